package ec2sim

import (
	"bytes"
	"io"
	"net/http"
	"time"
)

// HTTPClient returns an http.Client for SDK clients (any aws-sdk-go-v2
// service) that talk to a simulator over loopback; set it as the client's
// Options.HTTPClient.
//
// It buffers each request body before handing the request to net/http.
// The SDK closes the request body as soon as the response headers arrive,
// while net/http may still be probing that body for bytes past its
// Content-Length; against a server as fast as a local simulator that race
// now and then closes the connection in the middle of a large response
// ("use of closed network connection", aws-sdk-go-v2 issue #2737). The SDK
// retries such failures, so the default client works too, but the retries
// show up in Sim.Calls; with this client the counts are exact.
func HTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	return &http.Client{Transport: bufferingTransport{t}, Timeout: 5 * time.Minute}
}

type bufferingTransport struct{ next http.RoundTripper }

func (b bufferingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return b.next.RoundTrip(req)
	}
	body, err := io.ReadAll(req.Body)
	_ = req.Body.Close()
	if err != nil {
		return nil, err
	}
	r2 := req.Clone(req.Context())
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	r2.ContentLength = int64(len(body))
	return b.next.RoundTrip(r2)
}
