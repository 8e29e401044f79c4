package classes_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	"github.com/flotilla-io/flotilla/internal/launcher/classes"
	"github.com/flotilla-io/flotilla/internal/server/apierr"
)

func TestReaderGet(t *testing.T) {
	role := "KarpenterNodeRole"
	kube := fake.NewClientBuilder().WithScheme(classes.Scheme()).WithObjects(&awsv1.EC2NodeClass{
		ObjectMeta: metav1.ObjectMeta{Name: "default", Generation: 3},
		Spec:       awsv1.EC2NodeClassSpec{Role: role},
	}).Build()
	r := classes.Reader{Client: kube}
	ctx := context.Background()
	nc, err := r.Get(ctx, "default")
	if err != nil || nc.Name != "default" || nc.Spec.Role != role || nc.Generation != 3 {
		t.Fatalf("Get(default) = %+v, %v", nc, err)
	}
	_, err = r.Get(ctx, "missing")
	if !errors.Is(err, apierr.ErrNotFound) || !strings.Contains(err.Error(), `EC2NodeClass "missing"`) {
		t.Errorf("Get(missing): %v, want not found naming it", err)
	}
	for _, bad := range []string{"", "UPPER", "a/b", strings.Repeat("a", 254)} {
		if _, err := r.Get(ctx, bad); !errors.Is(err, apierr.ErrInvalidArgument) || !strings.Contains(err.Error(), "node_class_name") {
			t.Errorf("Get(%q): %v, want invalid argument naming node_class_name", bad, err)
		}
	}
}
