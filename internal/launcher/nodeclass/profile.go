package nodeclass

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"
)

// IAMAPI is the part of the IAM client the resolver uses to manage the
// instance profile of a node class that names a role.
type IAMAPI interface {
	GetInstanceProfile(ctx context.Context, in *iam.GetInstanceProfileInput, opts ...func(*iam.Options)) (*iam.GetInstanceProfileOutput, error)
	CreateInstanceProfile(ctx context.Context, in *iam.CreateInstanceProfileInput, opts ...func(*iam.Options)) (*iam.CreateInstanceProfileOutput, error)
	AddRoleToInstanceProfile(ctx context.Context, in *iam.AddRoleToInstanceProfileInput, opts ...func(*iam.Options)) (*iam.AddRoleToInstanceProfileOutput, error)
	RemoveRoleFromInstanceProfile(ctx context.Context, in *iam.RemoveRoleFromInstanceProfileInput, opts ...func(*iam.Options)) (*iam.RemoveRoleFromInstanceProfileOutput, error)
}

// profileTTL is how long an instance profile, once checked, is trusted
// to be in place.
const profileTTL = 15 * time.Minute

// ProfilePrefix starts the names of the instance profiles the launcher
// manages; the IAM policy scopes its grants to it.
const ProfilePrefix = "flotilla_"

// InstanceProfileName is the instance profile the launcher manages for a
// role in a cluster: flotilla_<cluster>_<hash of cluster and role>, within
// IAM's 128 characters and alphabet. role may be a name or an ARN.
func InstanceProfileName(cluster, role string) string {
	sum := sha256.Sum256([]byte(cluster + "/" + roleName(role)))
	c := strings.Map(func(r rune) rune {
		if r < 128 && (r == '_' || r == '-' || r == '.' || r == '@' || r == '=' || r == ',' || r == '+' ||
			('0' <= r && r <= '9') || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z')) {
			return r
		}
		return '-'
	}, cluster)
	if len(c) > 100 {
		c = c[:100]
	}
	return ProfilePrefix + c + "_" + hex.EncodeToString(sum[:])[:16]
}

// roleName is the name of a role given as a name or an ARN.
func roleName(role string) string {
	if strings.HasPrefix(role, "arn:") {
		if i := strings.LastIndex(role, "/"); i >= 0 {
			return role[i+1:]
		}
	}
	return role
}

// profileProblem is why an instance profile is not ready: a condition
// reason and message.
type profileProblem struct{ reason, message string }

// instanceProfile returns the instance profile for nc: its instanceProfile
// as given, or the managed profile of its role (made when missing). A
// setup problem (the role does not exist, access is denied) comes back as
// a problem for the status condition; other failures as the error.
func (r *Resolver) instanceProfile(ctx context.Context, nc interface {
	GetRole() string
	GetInstanceProfile() string
}) (string, *profileProblem, error) {
	if p := nc.GetInstanceProfile(); p != "" || nc.GetRole() == "" {
		return p, nil, nil
	}
	if r.o.IAM == nil || r.o.Cluster == "" {
		// Without IAM (isolated VPC) the role's same-named instance
		// profile, the EKS console's convention, is used.
		return roleName(nc.GetRole()), nil, nil
	}
	name := InstanceProfileName(r.o.Cluster, nc.GetRole())
	r.mu.Lock()
	at, ok := r.profiles[name]
	r.mu.Unlock()
	if ok && r.o.Now().Sub(at) < profileTTL {
		return name, nil, nil
	}
	err := r.ensureProfile(ctx, name, roleName(nc.GetRole()))
	var problem *profileProblem
	switch {
	case errors.As(err, &problem):
		return "", problem, nil
	case err != nil:
		return "", nil, err
	}
	r.mu.Lock()
	r.profiles[name] = r.o.Now()
	r.mu.Unlock()
	return name, nil, nil
}

func (p *profileProblem) Error() string { return p.reason + ": " + p.message }

// ensureProfile makes sure instance profile name exists, tagged for the
// cluster, with role (only) in it.
func (r *Resolver) ensureProfile(ctx context.Context, name, role string) error {
	prof, err := r.getOrCreateProfile(ctx, name)
	if err != nil {
		return err
	}
	for _, rl := range prof.Roles {
		if aws.ToString(rl.RoleName) == role {
			return nil
		}
		// A profile holds one role; a stale one (the name collides only if
		// someone edited the profile) makes way.
		if _, err := r.o.IAM.RemoveRoleFromInstanceProfile(ctx, &iam.RemoveRoleFromInstanceProfileInput{
			InstanceProfileName: aws.String(name), RoleName: rl.RoleName,
		}); err != nil && !hasCode(err, "NoSuchEntity") {
			return classify(fmt.Errorf("remove role %s from instance profile %s: %w", aws.ToString(rl.RoleName), name, err))
		}
	}
	_, err = r.o.IAM.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: aws.String(name), RoleName: aws.String(role)})
	switch {
	case hasCode(err, "NoSuchEntity"):
		return &profileProblem{"RoleNotFound", fmt.Sprintf("role %s does not exist", role)}
	case hasCode(err, "LimitExceeded"): // added concurrently
		return nil
	case err != nil:
		return classify(fmt.Errorf("add role %s to instance profile %s: %w", role, name, err))
	}
	r.o.Logger.Info("instance profile ready", slog.String("instance_profile", name), slog.String("role", role))
	return nil
}

func (r *Resolver) getOrCreateProfile(ctx context.Context, name string) (*iamtypes.InstanceProfile, error) {
	got, err := r.o.IAM.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(name)})
	if err == nil {
		return got.InstanceProfile, nil
	}
	if !hasCode(err, "NoSuchEntity") {
		return nil, classify(fmt.Errorf("get instance profile %s: %w", name, err))
	}
	made, err := r.o.IAM.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{
		InstanceProfileName: aws.String(name),
		Path:                aws.String("/"),
		Tags: []iamtypes.Tag{
			{Key: aws.String("kubernetes.io/cluster/" + r.o.Cluster), Value: aws.String("owned")},
			{Key: aws.String("flotilla.io/managed-by"), Value: aws.String("flotilla-launcher")},
		},
	})
	if hasCode(err, "EntityAlreadyExists") { // made concurrently
		return r.getOrCreateProfile(ctx, name)
	}
	if err != nil {
		return nil, classify(fmt.Errorf("create instance profile %s: %w", name, err))
	}
	return made.InstanceProfile, nil
}

// classify turns a permission error into a problem for the condition.
func classify(err error) error {
	if hasCode(err, "AccessDenied", "AccessDeniedException", "UnauthorizedOperation") {
		return &profileProblem{"InstanceProfileAccessDenied", err.Error()}
	}
	return err
}

func hasCode(err error, codes ...string) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	for _, c := range codes {
		if ae.ErrorCode() == c {
			return true
		}
	}
	return false
}
