package eventsim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Interrupt makes the admin call against the ec2sim at endpoint (such as
// http://127.0.0.1:4566): an event of kind for the instance goes on the
// queue, and with terminateAfter > 0 the instance is terminated then. It
// returns what was sent.
func Interrupt(ctx context.Context, endpoint, instance, kind string, terminateAfter time.Duration) (*Result, error) {
	q := url.Values{"Version": {APIVersion}, "instance": {instance}, "kind": {kind}}
	if terminateAfter > 0 {
		q.Set("terminate_after", terminateAfter.String())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+Path+"?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ec2sim interrupt: %w", err)
	}
	defer resp.Body.Close() //nolint:errcheck // read-only body
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("ec2sim interrupt: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("ec2sim interrupt: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	var res Result
	if err := json.Unmarshal(body, &res); err != nil {
		return nil, fmt.Errorf("ec2sim interrupt: answer %q: %w", body, err)
	}
	if len(res.Event) == 0 {
		return nil, fmt.Errorf("ec2sim interrupt: answer %q has no event", body)
	}
	return &res, nil
}
