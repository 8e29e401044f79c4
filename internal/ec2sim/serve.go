package ec2sim

import (
	"fmt"
	"net/http"
	"strings"
)

// handler answers one EC2 action, writing the response body's children to
// b. It runs with s.mu held.
type handler func(s *Sim, q query, b *xb) *apiError

var handlers = map[string]handler{
	"DescribeInstanceTypes":         (*Sim).describeInstanceTypes,
	"DescribeInstanceTypeOfferings": (*Sim).describeInstanceTypeOfferings,
	"DescribeAvailabilityZones":     (*Sim).describeAvailabilityZones,
	"DescribeSubnets":               (*Sim).describeSubnets,
	"DescribeSecurityGroups":        (*Sim).describeSecurityGroups,
	"DescribeImages":                (*Sim).describeImages,
	"DescribeSpotPriceHistory":      (*Sim).describeSpotPriceHistory,
	"CreateLaunchTemplate":          (*Sim).createLaunchTemplate,
	"DescribeLaunchTemplates":       (*Sim).describeLaunchTemplates,
	"DeleteLaunchTemplate":          (*Sim).deleteLaunchTemplate,
	"CreateFleet":                   (*Sim).createFleet,
	"DescribeInstances":             (*Sim).describeInstances,
	"TerminateInstances":            (*Sim).terminateInstances,
	"CreateTags":                    (*Sim).createTags,
}

func (s *Sim) serveQuery(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 10<<20)
	if err := r.ParseForm(); err != nil {
		s.mu.Lock()
		rid := s.newUUID()
		s.mu.Unlock()
		writeError(w, rid, &apiError{http.StatusBadRequest, "MalformedQueryString", err.Error()})
		return
	}
	q := query{v: r.Form}
	action := q.get("Action")
	if h := s.QueryHandlers[q.get("Version")]; h != nil {
		s.serveOtherQuery(w, r, h, action)
		return
	}

	s.mu.Lock()
	rid := s.newUUID()
	if action != "" {
		s.calls[action]++
	}
	f := s.takeFault(action)
	s.mu.Unlock()

	if f != nil {
		if !sleepCtx(r.Context(), f.Latency) {
			return
		}
		if f.Code != "" {
			writeError(w, rid, &apiError{faultStatus(f), f.Code, faultMessage(f.Code)})
			return
		}
	}
	if action == "" {
		writeError(w, rid, &apiError{http.StatusBadRequest, "MissingAction", "The request must contain the parameter Action"})
		return
	}
	if v := q.get("Version"); v != "" && v != APIVersion {
		writeError(w, rid, &apiError{http.StatusBadRequest, "InvalidParameterValue", fmt.Sprintf("ec2sim speaks API version %s, not %s", APIVersion, v)})
		return
	}
	h := handlers[action]
	if h == nil {
		writeError(w, rid, &apiError{http.StatusBadRequest, "InvalidAction", fmt.Sprintf("The action %s is not valid for this web service.", action)})
		return
	}
	if q.boolean("DryRun") {
		writeError(w, rid, &apiError{http.StatusPreconditionFailed, "DryRunOperation", "Request would have succeeded, but DryRun flag is set."})
		return
	}

	var b xb
	_, _ = b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	_, _ = b.WriteString("<" + action + `Response xmlns="` + Namespace + `">`)
	b.el("requestId", rid)
	s.mu.Lock()
	err := h(s, q, &b)
	s.mu.Unlock()
	if err != nil {
		writeError(w, rid, err)
		return
	}
	b.close(action + "Response")
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Header().Set("X-Amzn-Requestid", rid)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.Bytes())
}

// FaultWriter is implemented by a query-protocol handler that writes
// injected faults as its own service's error documents.
type FaultWriter interface {
	WriteFault(w http.ResponseWriter, status int, code, msg string)
}

// serveOtherQuery hands a query-protocol request of another service (by
// its Version, such as IAM's) to h, counting it and applying faults by
// action name.
func (s *Sim) serveOtherQuery(w http.ResponseWriter, r *http.Request, h http.Handler, action string) {
	s.mu.Lock()
	s.calls[action]++
	f := s.takeFault(action)
	rid := s.newUUID()
	s.mu.Unlock()
	if f != nil {
		if !sleepCtx(r.Context(), f.Latency) {
			return
		}
		if f.Code != "" {
			if fw, ok := h.(FaultWriter); ok {
				fw.WriteFault(w, faultStatus(f), f.Code, faultMessage(f.Code))
			} else {
				writeError(w, rid, &apiError{faultStatus(f), f.Code, faultMessage(f.Code)})
			}
			return
		}
	}
	h.ServeHTTP(w, r)
}

func faultMessage(code string) string {
	switch code {
	case "RequestLimitExceeded":
		return "Request limit exceeded."
	case "InternalError":
		return "An internal error has occurred"
	}
	return "ec2sim injected fault " + code
}

// writeError writes an EC2 error document.
func writeError(w http.ResponseWriter, rid string, e *apiError) {
	var b xb
	_, _ = b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.open("Response")
	b.open("Errors")
	b.open("Error")
	b.el("Code", e.Code)
	b.el("Message", e.Message)
	b.close("Error")
	b.close("Errors")
	b.el("RequestID", rid)
	b.close("Response")
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Header().Set("X-Amzn-Requestid", rid)
	status := e.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// archName maps the catalog's Go-style arch to EC2's.
func archName(a string) string {
	switch strings.ToLower(a) {
	case "amd64", "x86_64":
		return "x86_64"
	case "arm64", "aarch64":
		return "arm64"
	}
	return a
}
