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

	"github.com/flotilla-io/flotilla/internal/server/apierr"
)

// IAMAPI is the part of the IAM client the resolver uses to manage the
// instance profile of a node class that names a role: Resolve only reads
// (GetInstanceProfile); EnsureInstanceProfile, on a launch, writes.
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

// profileProblem is why an instance profile is not ready, or (pending)
// what the first launch will do about it: a condition reason and message.
type profileProblem struct {
	reason, message string
	pending         bool
}

func (p *profileProblem) Error() string { return p.reason + ": " + p.message }

// instanceProfile returns the instance profile nodes of nc get: its
// instanceProfile as given, or the managed profile of its role. It only
// reads IAM: a managed profile not in place yet comes back with a pending
// note (EnsureInstanceProfile, called by Launch, makes it); a setup problem
// (access denied) comes back as a problem for the status condition; other
// failures as the error.
func (r *Resolver) instanceProfile(ctx context.Context, nc profileSource) (string, *profileProblem, error) {
	name, managed := r.profileName(nc)
	if !managed || r.profileChecked(name) {
		return name, nil, nil
	}
	role := roleName(nc.GetRole())
	got, err := r.o.IAM.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(name)})
	switch {
	case hasCode(err, "NoSuchEntity"):
		return name, &profileProblem{"InstanceProfilePending", fmt.Sprintf("instance profile %s for role %s is created by the first launch", name, role), true}, nil
	case err != nil:
		var problem *profileProblem
		if err = classify(fmt.Errorf("get instance profile %s: %w", name, err)); errors.As(err, &problem) {
			return "", problem, nil
		}
		return "", nil, err
	}
	if roles := got.InstanceProfile.Roles; len(roles) != 1 || aws.ToString(roles[0].RoleName) != role {
		return name, &profileProblem{"InstanceProfilePending", fmt.Sprintf("instance profile %s gets role %s at the next launch", name, role), true}, nil
	}
	r.markProfile(name)
	return name, nil, nil
}

// EnsureInstanceProfile makes the managed instance profile of nc's role
// exist, tagged for the cluster, with the role (only) in it. Launch calls
// it, and only Launch: the role comes from an EC2NodeClass object, so
// profiles are made for roles a cluster administrator named, on a launch
// the caller was allowed to ask for. A class with an instanceProfile, or
// a launcher without IAM, needs nothing. A setup problem (the role does
// not exist, access is denied) wraps apierr.ErrFailedPrecondition.
func (r *Resolver) EnsureInstanceProfile(ctx context.Context, nc profileSource) error {
	name, managed := r.profileName(nc)
	if !managed || r.profileChecked(name) {
		return nil
	}
	r.ensureMu.Lock() // rare (once per role and profileTTL): one at a time
	defer r.ensureMu.Unlock()
	if r.profileChecked(name) {
		return nil
	}
	err := r.ensureProfile(ctx, name, roleName(nc.GetRole()))
	var problem *profileProblem
	switch {
	case errors.As(err, &problem):
		return fmt.Errorf("%w: instance profile %s: %s", apierr.ErrFailedPrecondition, name, problem.message)
	case err != nil:
		return err
	}
	r.markProfile(name)
	return nil
}

// profileSource is the part of a node class that decides its profile.
type profileSource interface {
	GetRole() string
	GetInstanceProfile() string
}

// profileName is the instance profile of nc, and whether the launcher
// manages it (a role, with IAM and a cluster name).
func (r *Resolver) profileName(nc profileSource) (string, bool) {
	switch {
	case nc.GetInstanceProfile() != "" || nc.GetRole() == "":
		return nc.GetInstanceProfile(), false
	case r.o.IAM == nil || r.o.Cluster == "":
		// Without IAM (isolated VPC) the role's same-named instance
		// profile, the EKS console's convention, is used.
		return roleName(nc.GetRole()), false
	}
	return InstanceProfileName(r.o.Cluster, nc.GetRole()), true
}

// profileChecked reports whether the managed profile name was found in
// place within profileTTL.
func (r *Resolver) profileChecked(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.profiles[name]
	return ok && r.o.Now().Sub(at) < profileTTL
}

func (r *Resolver) markProfile(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.profiles[name] = r.o.Now()
}

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
		return &profileProblem{reason: "RoleNotFound", message: fmt.Sprintf("role %s does not exist", role)}
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
		return &profileProblem{reason: "InstanceProfileAccessDenied", message: err.Error()}
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
