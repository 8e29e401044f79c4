package nodeclass

import (
	"errors"
	"fmt"
	"strings"

	"github.com/flotilla-io/flotilla/internal/launcher/userdata"
	"github.com/flotilla-io/flotilla/internal/server/apierr"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

// Validate checks a node class's selector terms, block device mappings and
// metadata options without calling AWS.
func Validate(nc *launcherv1.NodeClass) error {
	if nc == nil {
		return fmt.Errorf("%w: node_class: missing", apierr.ErrInvalidArgument)
	}
	var errs []error
	check := func(list string, terms []*launcherv1.SelectorTerm, allowName bool) {
		if len(terms) == 0 {
			errs = append(errs, fmt.Errorf("%w: node_class.%s: no terms", apierr.ErrInvalidArgument, list))
		}
		for i, t := range terms {
			field := fmt.Sprintf("node_class.%s[%d]", list, i)
			if err := checkTerm(t, field, allowName); err != nil {
				errs = append(errs, err)
			}
		}
	}
	check("subnet_selector_terms", nc.GetSubnetSelectorTerms(), false)
	check("security_group_selector_terms", nc.GetSecurityGroupSelectorTerms(), true)
	if err := checkAMITerms(nc.GetAmiSelectorTerms()); err != nil {
		errs = append(errs, err)
	}
	if nc.GetRole() != "" && nc.GetInstanceProfile() != "" {
		errs = append(errs, fmt.Errorf("%w: node_class: role and instance_profile are mutually exclusive", apierr.ErrInvalidArgument))
	}
	if err := validateLaunchSettings(nc); err != nil {
		errs = append(errs, err)
	}
	if err := checkUserData(nc); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func checkTerm(t *launcherv1.SelectorTerm, field string, allowName bool) error {
	set := 0
	if len(t.GetTags()) > 0 {
		set++
		for k := range t.GetTags() {
			if k == "" {
				return fmt.Errorf("%w: %s.tags: empty key", apierr.ErrInvalidArgument, field)
			}
		}
	}
	if t.GetId() != "" {
		set++
	}
	if t.GetName() != "" {
		if !allowName {
			return fmt.Errorf("%w: %s.name: not supported here", apierr.ErrInvalidArgument, field)
		}
		set++
	}
	if t.GetAlias() != "" {
		return fmt.Errorf("%w: %s.alias: only AMI terms take an alias", apierr.ErrInvalidArgument, field)
	}
	if t.GetSsmParameter() != "" {
		return fmt.Errorf("%w: %s.ssm_parameter: only AMI terms take an SSM parameter", apierr.ErrInvalidArgument, field)
	}
	if t.GetOwner() != "" && !allowName {
		return fmt.Errorf("%w: %s.owner: only AMI terms take an owner", apierr.ErrInvalidArgument, field)
	}
	if set != 1 {
		return fmt.Errorf("%w: %s: set exactly one of tags, id or name", apierr.ErrInvalidArgument, field)
	}
	return nil
}

func checkAMITerms(terms []*launcherv1.SelectorTerm) error {
	if len(terms) == 0 {
		return fmt.Errorf("%w: node_class.ami_selector_terms: no terms", apierr.ErrInvalidArgument)
	}
	for i, t := range terms {
		field := fmt.Sprintf("node_class.ami_selector_terms[%d]", i)
		if t.GetAlias() == "" {
			if err := checkImageTerm(t, field); err != nil {
				return err
			}
			continue
		}
		if len(terms) > 1 {
			return fmt.Errorf("%w: %s.alias: an alias term must be the only AMI term", apierr.ErrInvalidArgument, field)
		}
		if len(t.GetTags()) > 0 || t.GetId() != "" || t.GetName() != "" || t.GetOwner() != "" {
			return fmt.Errorf("%w: %s.alias: cannot be combined with tags, id, name or owner", apierr.ErrInvalidArgument, field)
		}
		if _, err := ParseAlias(t.GetAlias(), field+".alias"); err != nil {
			return err
		}
	}
	return nil
}

// checkImageTerm checks an AMI term that is not an alias, as Karpenter's
// CRD does and a little stricter: id alone; ssmParameter alone (Karpenter
// would silently ignore the term's other fields); or any of name, owner
// and tags together, which must all match.
func checkImageTerm(t *launcherv1.SelectorTerm, field string) error {
	for k, v := range t.GetTags() {
		if k == "" || v == "" {
			return fmt.Errorf("%w: %s.tags: empty tag keys or values are not supported", apierr.ErrInvalidArgument, field)
		}
	}
	others := len(t.GetTags()) > 0 || t.GetName() != "" || t.GetOwner() != ""
	switch {
	case t.GetId() != "" && (others || t.GetSsmParameter() != ""):
		return fmt.Errorf("%w: %s.id: cannot be combined with other fields", apierr.ErrInvalidArgument, field)
	case t.GetSsmParameter() != "" && others:
		return fmt.Errorf("%w: %s.ssm_parameter: cannot be combined with tags, name or owner", apierr.ErrInvalidArgument, field)
	case t.GetId() == "" && t.GetSsmParameter() == "" && len(t.GetTags()) == 0 && t.GetName() == "":
		return fmt.Errorf("%w: %s: set one of tags, id, name, alias or ssm_parameter", apierr.ErrInvalidArgument, field)
	}
	return nil
}

// checkUserData checks amiFamily, that an alias agrees with it, and that
// the class's user data can be merged in its family's format.
func checkUserData(nc *launcherv1.NodeClass) error {
	if _, err := userdata.ParseFamily(nc.GetAmiFamily()); err != nil {
		return fmt.Errorf("%w: node_class.ami_family: %w", apierr.ErrInvalidArgument, err)
	}
	family := FamilyOf(nc)
	if nc.GetAmiFamily() != "" && string(family) != strings.ToLower(nc.GetAmiFamily()) {
		return fmt.Errorf("%w: node_class.ami_family: %s disagrees with the alias's family %s", apierr.ErrInvalidArgument, nc.GetAmiFamily(), family)
	}
	if err := userdata.Check(family, nc.GetUserData()); err != nil {
		return fmt.Errorf("%w: node_class.user_data: %w", apierr.ErrInvalidArgument, err)
	}
	switch p := nc.GetInstanceStorePolicy(); p {
	case "", "RAID0":
	default:
		return fmt.Errorf("%w: node_class.instance_store_policy: %q is not RAID0", apierr.ErrInvalidArgument, p)
	}
	return nil
}
