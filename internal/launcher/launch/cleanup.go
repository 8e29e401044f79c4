package launch

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/flotilla-io/flotilla/internal/launcher/awsclient"
)

// Defaults of the launch template cleanup.
const (
	DefaultTemplateGrace   = time.Hour
	DefaultCleanupInterval = 5 * time.Minute
)

// templateNotFoundCodes are the CreateFleet error codes of a launch
// template that no longer exists.
var templateNotFoundCodes = map[string]bool{
	"InvalidLaunchTemplateName.NotFoundException": true,
	"InvalidLaunchTemplateId.NotFound":            true,
	"InvalidLaunchTemplateId.NotFoundException":   true,
}

// forgetMissingTemplates drops templates a fleet reported missing from
// the cache, so the next launch creates them again.
func (l *Launcher) forgetMissingTemplates(errs []ec2types.CreateFleetError) {
	for _, e := range errs {
		if !templateNotFoundCodes[aws.ToString(e.ErrorCode)] || e.LaunchTemplateAndOverrides == nil ||
			e.LaunchTemplateAndOverrides.LaunchTemplateSpecification == nil {
			continue
		}
		name := aws.ToString(e.LaunchTemplateAndOverrides.LaunchTemplateSpecification.LaunchTemplateName)
		if name != "" {
			l.templates.forget(name)
		}
	}
}

// CleanupTemplates deletes the launch templates this launcher made for its
// cluster (named flotilla-<cluster>-… and tagged for the cluster) that no
// launch has asked for within grace. A template the process has not used
// since it started counts as last used at its creation or at the start,
// whichever is later, so a restart never deletes a template in use. It
// returns the names deleted.
func (l *Launcher) CleanupTemplates(ctx context.Context, grace time.Duration) ([]string, error) {
	if l.o.Cluster == "" {
		return nil, nil
	}
	if grace <= 0 {
		grace = DefaultTemplateGrace
	}
	var listed []ec2types.LaunchTemplate
	p := ec2.NewDescribeLaunchTemplatesPaginator(l.o.EC2, &ec2.DescribeLaunchTemplatesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:" + ClusterTag(l.o.Cluster)), Values: []string{"owned"}},
		{Name: aws.String("launch-template-name"), Values: []string{"flotilla-" + l.o.Cluster + "-*"}},
	}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe launch templates: %w", err)
		}
		listed = append(listed, page.LaunchTemplates...)
	}
	var deleted []string
	for _, lt := range l.unusedTemplates(listed, grace) {
		name := aws.ToString(lt.LaunchTemplateName)
		_, err := l.o.EC2.DeleteLaunchTemplate(ctx, &ec2.DeleteLaunchTemplateInput{LaunchTemplateId: lt.LaunchTemplateId})
		if err != nil && !awsclient.HasCode(err, "InvalidLaunchTemplateId.NotFound", "InvalidLaunchTemplateName.NotFoundException") {
			return deleted, fmt.Errorf("delete launch template %s: %w", name, err)
		}
		l.o.Metrics.TemplateDeleted()
		l.o.Logger.Info("deleted unused launch template", slog.String("name", name))
		deleted = append(deleted, name)
	}
	return deleted, nil
}

// unusedTemplates picks the templates unused for longer than grace and
// forgets them in the cache (so a launch that needs one again creates it).
func (l *Launcher) unusedTemplates(listed []ec2types.LaunchTemplate, grace time.Duration) []ec2types.LaunchTemplate {
	now := l.o.Now()
	c := l.templates
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []ec2types.LaunchTemplate
	for _, lt := range listed {
		name := aws.ToString(lt.LaunchTemplateName)
		last := l.started
		if lt.CreateTime != nil && lt.CreateTime.After(last) {
			last = *lt.CreateTime
		}
		if e, ok := c.entries[name]; ok && e.lastUsed.After(last) {
			last = e.lastUsed
		}
		if now.Sub(last) <= grace {
			continue
		}
		delete(c.entries, name)
		out = append(out, lt)
	}
	return out
}

// RunCleanup deletes unused launch templates every interval until ctx is
// done, logging failures.
func (l *Launcher) RunCleanup(ctx context.Context, interval, grace time.Duration) {
	if interval <= 0 {
		interval = DefaultCleanupInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := l.CleanupTemplates(ctx, grace); err != nil && ctx.Err() == nil {
			l.o.Logger.Warn("launch template cleanup", slog.Any("error", err))
		}
	}
}
