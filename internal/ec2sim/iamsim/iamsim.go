// Package iamsim simulates the instance profile calls of the AWS IAM API
// over its query protocol (form-encoded POST, Version 2010-05-08, XML
// answers and ErrorResponse documents): GetInstanceProfile,
// CreateInstanceProfile (with tags), AddRoleToInstanceProfile,
// RemoveRoleFromInstanceProfile, DeleteInstanceProfile and GetRole. Roles
// are seeded with AddRole; IAM's rule of at most one role per instance
// profile holds. It is a test and demo tool, mounted on an ec2sim.Sim
// through Sim.QueryHandlers[APIVersion].
package iamsim

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// APIVersion is the IAM API version, which the SDK sends as Version.
const APIVersion = "2010-05-08"

// Namespace is the XML namespace of IAM answers.
const Namespace = "https://iam.amazonaws.com/doc/2010-05-08/"

// Role is a simulated IAM role.
type Role struct {
	Name, ID, Arn, Path string
	Created             time.Time
}

// InstanceProfile is a snapshot of a simulated instance profile.
type InstanceProfile struct {
	Name, ID, Arn, Path string
	Created             time.Time
	Roles               []string
	Tags                map[string]string
}

// Handler serves the IAM calls. Create it with New.
type Handler struct {
	account string
	now     func() time.Time

	mu       sync.Mutex
	roles    map[string]*Role
	profiles map[string]*InstanceProfile
	calls    map[string]int
}

// New makes a handler for account (its ARNs) with no roles or profiles;
// now is the clock (time.Now when nil).
func New(account string, now func() time.Time) *Handler {
	if now == nil {
		now = time.Now
	}
	return &Handler{account: account, now: now, roles: map[string]*Role{}, profiles: map[string]*InstanceProfile{}, calls: map[string]int{}}
}

// AddRole creates a role (path /).
func (h *Handler) AddRole(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.roles[name] = &Role{Name: name, ID: "AROA" + idFor("role/"+name), Arn: fmt.Sprintf("arn:aws:iam::%s:role/%s", h.account, name), Path: "/", Created: h.now().UTC()}
}

// InstanceProfiles returns the profiles, sorted by name.
func (h *Handler) InstanceProfiles() []InstanceProfile {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]InstanceProfile, 0, len(h.profiles))
	for _, p := range h.profiles {
		c := *p
		c.Roles = append([]string(nil), p.Roles...)
		c.Tags = map[string]string{}
		for k, v := range p.Tags {
			c.Tags[k] = v
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Calls counts the requests by action.
func (h *Handler) Calls() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]int{}
	for k, v := range h.calls {
		out[k] = v
	}
	return out
}

// idFor makes a stable 17-character IAM-style unique ID suffix.
func idFor(s string) string {
	sum := sha256.Sum256([]byte(s))
	return strings.ToUpper(hex.EncodeToString(sum[:]))[:17]
}

// apiError is an IAM error answer.
type apiError struct {
	status      int
	code, msg   string
	senderFault bool
}

func noSuchEntity(format string, args ...any) *apiError {
	return &apiError{http.StatusNotFound, "NoSuchEntity", fmt.Sprintf(format, args...), true}
}

func validation(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, "ValidationError", fmt.Sprintf(format, args...), true}
}

var nameRE = regexp.MustCompile(`^[\w+=,.@-]{1,128}$`)

type action func(h *Handler, form url.Values) (*result, *apiError)

var actions = map[string]action{
	"GetInstanceProfile":            (*Handler).getInstanceProfile,
	"CreateInstanceProfile":         (*Handler).createInstanceProfile,
	"AddRoleToInstanceProfile":      (*Handler).addRole,
	"RemoveRoleFromInstanceProfile": (*Handler).removeRole,
	"DeleteInstanceProfile":         (*Handler).deleteInstanceProfile,
	"GetRole":                       (*Handler).getRole,
}

// ServeHTTP answers one IAM query-protocol request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		WriteError(w, http.StatusBadRequest, "MalformedInput", err.Error())
		return
	}
	name := r.Form.Get("Action")
	act := actions[name]
	h.mu.Lock()
	h.calls[name]++
	var res *result
	var aerr *apiError
	if act == nil {
		aerr = &apiError{http.StatusBadRequest, "InvalidAction", "Could not find operation " + name + " for version " + APIVersion, true}
	} else {
		res, aerr = act(h, r.Form)
	}
	h.mu.Unlock()
	if aerr != nil {
		writeErr(w, aerr)
		return
	}
	writeResult(w, name, res)
}

type xmlTag struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

type xmlRole struct {
	Path       string `xml:"Path"`
	RoleName   string `xml:"RoleName"`
	RoleID     string `xml:"RoleId"`
	Arn        string `xml:"Arn"`
	CreateDate string `xml:"CreateDate"`
}

type xmlProfile struct {
	InstanceProfileID   string    `xml:"InstanceProfileId"`
	Roles               []xmlRole `xml:"Roles>member"`
	InstanceProfileName string    `xml:"InstanceProfileName"`
	Path                string    `xml:"Path"`
	Arn                 string    `xml:"Arn"`
	CreateDate          string    `xml:"CreateDate"`
	Tags                []xmlTag  `xml:"Tags>member,omitempty"`
}

// result is the <ActionResult> element; the fields set are its children.
type result struct {
	XMLName         xml.Name
	InstanceProfile *xmlProfile `xml:"InstanceProfile,omitempty"`
	Role            *xmlRole    `xml:"Role,omitempty"`
}

func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func (h *Handler) roleXML(name string) xmlRole {
	r := h.roles[name]
	if r == nil { // deleted after it was added to the profile
		return xmlRole{Path: "/", RoleName: name}
	}
	return xmlRole{Path: r.Path, RoleName: r.Name, RoleID: r.ID, Arn: r.Arn, CreateDate: fmtTime(r.Created)}
}

func (h *Handler) profileXML(p *InstanceProfile) *result {
	x := xmlProfile{InstanceProfileID: p.ID, InstanceProfileName: p.Name, Path: p.Path, Arn: p.Arn, CreateDate: fmtTime(p.Created), Roles: []xmlRole{}}
	for _, r := range p.Roles {
		x.Roles = append(x.Roles, h.roleXML(r))
	}
	keys := make([]string, 0, len(p.Tags))
	for k := range p.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		x.Tags = append(x.Tags, xmlTag{k, p.Tags[k]})
	}
	return &result{InstanceProfile: &x}
}

func (h *Handler) profile(form url.Values) (*InstanceProfile, *apiError) {
	name := form.Get("InstanceProfileName")
	if name == "" {
		return nil, validation("1 validation error detected: Value null at 'instanceProfileName' failed to satisfy constraint: Member must not be null")
	}
	p := h.profiles[name]
	if p == nil {
		return nil, noSuchEntity("Instance Profile %s cannot be found.", name)
	}
	return p, nil
}

func (h *Handler) getInstanceProfile(form url.Values) (*result, *apiError) {
	p, err := h.profile(form)
	if err != nil {
		return nil, err
	}
	return h.profileXML(p), nil
}

func (h *Handler) createInstanceProfile(form url.Values) (*result, *apiError) {
	name := form.Get("InstanceProfileName")
	if !nameRE.MatchString(name) {
		return nil, validation("The specified value for instanceProfileName is invalid. It must contain only alphanumeric characters and/or the following: +=,.@_-")
	}
	if h.profiles[name] != nil {
		return nil, &apiError{http.StatusConflict, "EntityAlreadyExists", "Instance Profile " + name + " already exists.", true}
	}
	path := form.Get("Path")
	if path == "" {
		path = "/"
	}
	tags := map[string]string{}
	for i := 1; form.Has("Tags.member." + strconv.Itoa(i) + ".Key"); i++ {
		p := "Tags.member." + strconv.Itoa(i)
		tags[form.Get(p+".Key")] = form.Get(p + ".Value")
	}
	if len(tags) > 50 {
		return nil, &apiError{http.StatusConflict, "LimitExceeded", "The number of tags has reached the maximum limit.", true}
	}
	p := &InstanceProfile{
		Name: name, ID: "AIPA" + idFor("instance-profile/"+name), Path: path,
		Arn:     fmt.Sprintf("arn:aws:iam::%s:instance-profile%s%s", h.account, path, name),
		Created: h.now().UTC(), Tags: tags,
	}
	h.profiles[name] = p
	return h.profileXML(p), nil
}

func (h *Handler) addRole(form url.Values) (*result, *apiError) {
	p, err := h.profile(form)
	if err != nil {
		return nil, err
	}
	role := form.Get("RoleName")
	if h.roles[role] == nil {
		return nil, noSuchEntity("The role with name %s cannot be found.", role)
	}
	if len(p.Roles) > 0 {
		return nil, &apiError{http.StatusConflict, "LimitExceeded", "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1", true}
	}
	p.Roles = append(p.Roles, role)
	return nil, nil
}

func (h *Handler) removeRole(form url.Values) (*result, *apiError) {
	p, err := h.profile(form)
	if err != nil {
		return nil, err
	}
	role := form.Get("RoleName")
	for i, r := range p.Roles {
		if r == role {
			p.Roles = append(p.Roles[:i], p.Roles[i+1:]...)
			return nil, nil
		}
	}
	return nil, noSuchEntity("The role with name %s cannot be found in instance profile %s.", role, p.Name)
}

func (h *Handler) deleteInstanceProfile(form url.Values) (*result, *apiError) {
	p, err := h.profile(form)
	if err != nil {
		return nil, err
	}
	if len(p.Roles) > 0 {
		return nil, &apiError{http.StatusConflict, "DeleteConflict", "Cannot delete entity, must remove roles from instance profile first.", true}
	}
	delete(h.profiles, p.Name)
	return nil, nil
}

func (h *Handler) getRole(form url.Values) (*result, *apiError) {
	name := form.Get("RoleName")
	if h.roles[name] == nil {
		return nil, noSuchEntity("The role with name %s cannot be found.", name)
	}
	r := h.roleXML(name)
	return &result{Role: &r}, nil
}

var requestSeq struct {
	sync.Mutex
	n int
}

func requestID() string {
	requestSeq.Lock()
	defer requestSeq.Unlock()
	requestSeq.n++
	s := idFor("request/" + strconv.Itoa(requestSeq.n))
	return strings.ToLower(s[:8] + "-" + s[8:12] + "-4" + s[12:15] + "-a" + s[15:17] + "0-000000000000")
}

// writeResult writes <ActionResponse><ActionResult>…</ActionResult>
// <ResponseMetadata/></ActionResponse>.
func writeResult(w http.ResponseWriter, action string, res *result) {
	type meta struct {
		RequestID string `xml:"RequestId"`
	}
	type response struct {
		XMLName xml.Name
		Xmlns   string  `xml:"xmlns,attr"`
		Result  *result `xml:",omitempty"`
		Meta    meta    `xml:"ResponseMetadata"`
	}
	if res == nil {
		res = &result{}
	}
	res.XMLName = xml.Name{Local: action + "Result"}
	body, err := xml.Marshal(response{XMLName: xml.Name{Local: action + "Response"}, Xmlns: Namespace, Result: res, Meta: meta{requestID()}})
	if err != nil {
		WriteError(w, http.StatusInternalServerError, "ServiceFailure", err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append([]byte(`<?xml version="1.0" encoding="UTF-8"?>`+"\n"), body...))
}

func writeErr(w http.ResponseWriter, e *apiError) {
	kind := "Receiver"
	if e.senderFault {
		kind = "Sender"
	}
	writeErrorDoc(w, e.status, kind, e.code, e.msg)
}

// WriteFault writes an injected fault as an IAM error (ec2sim.FaultWriter).
func (h *Handler) WriteFault(w http.ResponseWriter, status int, code, msg string) {
	WriteError(w, status, code, msg)
}

// WriteError writes an IAM ErrorResponse document.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	kind := "Sender"
	if status >= 500 {
		kind = "Receiver"
	}
	writeErrorDoc(w, status, kind, code, msg)
}

func writeErrorDoc(w http.ResponseWriter, status int, kind, code, msg string) {
	type xmlErr struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	type doc struct {
		XMLName   xml.Name `xml:"ErrorResponse"`
		Xmlns     string   `xml:"xmlns,attr"`
		Error     xmlErr   `xml:"Error"`
		RequestID string   `xml:"RequestId"`
	}
	body, _ := xml.Marshal(doc{Xmlns: Namespace, Error: xmlErr{kind, code, msg}, RequestID: requestID()})
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_, _ = w.Write(append([]byte(`<?xml version="1.0" encoding="UTF-8"?>`+"\n"), body...))
}
