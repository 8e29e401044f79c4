// Package ec2sim is an in-process simulator of the parts of the Amazon EC2
// API that a node autoscaler uses. It is a test and demo tool: it speaks the
// EC2 query protocol (form-encoded POST, XML answers in the 2016-11-15
// namespace, EC2-style error documents and HTTP statuses) closely enough
// that the real aws-sdk-go-v2 EC2 client and the aws CLI talk to it
// unmodified through an endpoint override. It ignores request signatures.
//
// Requests carrying an X-Amz-Target header (the JSON protocols of SSM, the
// Pricing API and so on) are handed to Sim.JSONHandlers by target prefix.
//
// All state lives behind one mutex; IDs come from a counter mixed through a
// hash, so a run that makes the same calls in the same order gets the same
// IDs.
package ec2sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/flotilla-io/flotilla/internal/ec2catalog"
)

// APIVersion is the EC2 API version the simulator speaks.
const APIVersion = "2016-11-15"

// Namespace is the XML namespace of EC2 responses.
const Namespace = "http://ec2.amazonaws.com/doc/2016-11-15/"

// DefaultCluster is the cluster name in the discovery tags of the seeded
// subnets and security group.
const DefaultCluster = "test-cluster"

// DiscoveryTag is the tag key Karpenter-style node classes select on.
const DiscoveryTag = "karpenter.sh/discovery"

// AccountID is the account that owns everything the simulator creates.
const AccountID = "123456789012"

// Capacity types.
const (
	CapacityTypeSpot     = "spot"
	CapacityTypeOnDemand = "on-demand"
)

// Instance states, as EC2 names them.
const (
	StatePending      = "pending"
	StateRunning      = "running"
	StateShuttingDown = "shutting-down"
	StateTerminated   = "terminated"
)

// terminatedVisibleFor is how long DescribeInstances keeps showing a
// terminated instance, as EC2 does (about an hour).
const terminatedVisibleFor = time.Hour

// idempotencyWindow is how long a CreateFleet ClientToken is remembered.
// EC2 answers a repeated ClientToken with the first request's result,
// errors included, and refuses it with other parameters
// (IdempotentParameterMismatch): EC2 API Reference, CreateFleet,
// ClientToken, and "Ensuring idempotency in Amazon EC2 API requests"
// (https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-idempotency.html).
const idempotencyWindow = 8 * time.Hour

// Options configure a Sim.
type Options struct {
	// Catalog is the instance types the region offers, in every zone.
	Catalog []ec2catalog.Spec
	// Region defaults to us-east-1.
	Region string
	// Zones default to Region+"a", "b" and "c".
	Zones []string
	// SpotDiscount is the spot price as a fraction of the on-demand price
	// (default 0.3); each zone varies it by a few percent, deterministically.
	SpotDiscount float64
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Cluster is the cluster name in the seeded subnets' and security
	// group's discovery tags (default DefaultCluster).
	Cluster string
	// VcpuQuotas are the account's vCPU quotas by capacity type and quota
	// class (see SetVcpuQuota and ParseVcpuQuotas); absent ones are
	// unlimited.
	VcpuQuotas map[string]map[string]int
}

// Fault makes requests fail or slow down. See Sim.InjectFault.
type Fault struct {
	// Action is the EC2 action (e.g. "CreateFleet") or JSON target
	// ("AmazonSSM.GetParameter", or just "GetParameter") to affect; ""
	// affects every request.
	Action string
	// Code is the error code to answer with, e.g. "RequestLimitExceeded"
	// (HTTP 503, retried by the SDK as throttling) or "InternalError" (HTTP
	// 500). Empty: the request is only delayed by Latency.
	Code string
	// Status overrides the HTTP status (default by Code: 503 for
	// RequestLimitExceeded, 500 for InternalError and ServiceUnavailable, 400
	// otherwise).
	Status int
	// Count is how many matching requests the fault affects; 0 or less
	// means every matching request until ClearFaults.
	Count int
	// Latency is added before answering each affected request.
	Latency time.Duration
}

// Instance is a snapshot of one simulated instance.
type Instance struct {
	ID           string
	InstanceType string
	Zone         string
	SubnetID     string
	VpcID        string
	// CapacityType is spot or on-demand.
	CapacityType string
	State        string
	Tags         map[string]string
	LaunchTime   time.Time
	// TerminateTime is when TerminateInstances was called; zero otherwise.
	TerminateTime    time.Time
	ImageID          string
	ClientToken      string
	FleetID          string
	LaunchTemplateID string
	PrivateIP        string
	PrivateDNSName   string
	Architecture     string // x86_64 or arm64
	reservationID    string
}

// Subnet is a simulated subnet.
type Subnet struct {
	ID                   string
	VpcID                string
	Zone                 string
	CIDR                 string
	AvailableIPAddresses int
	Tags                 map[string]string
}

// SecurityGroup is a simulated security group.
type SecurityGroup struct {
	ID          string
	Name        string
	Description string
	VpcID       string
	Tags        map[string]string
}

// Image is a simulated AMI.
type Image struct {
	ID           string
	Name         string
	OwnerID      string
	Architecture string // x86_64 or arm64
	CreationDate time.Time
	Tags         map[string]string
	Deprecated   bool
}

// LaunchTemplate is a snapshot of a simulated launch template (version 1
// only).
type LaunchTemplate struct {
	ID               string
	Name             string
	CreateTime       time.Time
	ImageID          string
	InstanceType     string
	UserData         string
	SecurityGroupIDs []string
	// Tags are the template's own tags.
	Tags map[string]string
	// TagSpecifications are the tags the template puts on what it
	// launches, by resource type (instance, volume, ...).
	TagSpecifications map[string]map[string]string
	// MetadataOptions holds LaunchTemplateData.MetadataOptions.* by field
	// name, e.g. HttpTokens=required.
	MetadataOptions map[string]string
	// Data holds every LaunchTemplateData.* request parameter, keys without
	// the LaunchTemplateData. prefix (e.g. BlockDeviceMapping.1.Ebs.VolumeSize).
	Data map[string]string
}

// Sim is a simulated EC2 region. It is an http.Handler.
type Sim struct {
	// JSONHandlers serve requests with an X-Amz-Target header, keyed by the
	// target's prefix before the dot ("AmazonSSM", "AWSPriceListService").
	// Fill it before serving; it is read without locking.
	JSONHandlers map[string]http.Handler
	// QueryHandlers serve query-protocol requests of other services, keyed
	// by the API version they send ("2010-05-08" for IAM). Fill it before
	// serving; it is read without locking.
	QueryHandlers map[string]http.Handler

	mu           sync.Mutex
	region       string
	zones        []string
	spotDiscount float64
	now          func() time.Time

	types     map[string]ec2catalog.Spec
	typeNames []string // sorted

	capacity map[offeringKey]int
	quotas   map[quotaKey]int // vCPUs; absent: unlimited
	faults   []*Fault
	calls    map[string]int
	idSeq    uint64
	ipSeq    int

	vpcID          string
	subnets        []*Subnet
	securityGroups []*SecurityGroup
	images         []*Image
	templates      []*launchTemplate
	instances      []*Instance
	fleets         map[string]*fleetRecord // by ClientToken
}

type offeringKey struct{ instanceType, zone, capacityType string }

// New makes a simulator seeded with one subnet per zone and one security
// group, all tagged karpenter.sh/discovery=<Options.Cluster> (default
// test-cluster), and no images.
func New(opts Options) *Sim {
	s := &Sim{
		JSONHandlers:  map[string]http.Handler{},
		QueryHandlers: map[string]http.Handler{},
		region:        opts.Region,
		zones:         slices.Clone(opts.Zones),
		spotDiscount:  opts.SpotDiscount,
		now:           opts.Now,
		types:         map[string]ec2catalog.Spec{},
		capacity:      map[offeringKey]int{},
		quotas:        map[quotaKey]int{},
		calls:         map[string]int{},
		fleets:        map[string]*fleetRecord{},
	}
	if s.region == "" {
		s.region = "us-east-1"
	}
	if len(s.zones) == 0 {
		s.zones = []string{s.region + "a", s.region + "b", s.region + "c"}
	}
	if s.spotDiscount <= 0 {
		s.spotDiscount = 0.3
	}
	if s.now == nil {
		s.now = time.Now
	}
	for _, spec := range opts.Catalog {
		if _, dup := s.types[spec.Name]; !dup {
			s.typeNames = append(s.typeNames, spec.Name)
		}
		s.types[spec.Name] = spec
	}
	sort.Strings(s.typeNames)
	for ct, classes := range opts.VcpuQuotas {
		for class, n := range classes {
			s.quotas[quotaKey{class, ct}] = n
		}
	}

	cluster := opts.Cluster
	if cluster == "" {
		cluster = DefaultCluster
	}
	s.vpcID = s.newID("vpc-")
	for i, z := range s.zones {
		s.AddSubnet(Subnet{
			ID:                   s.newID("subnet-"),
			VpcID:                s.vpcID,
			Zone:                 z,
			CIDR:                 fmt.Sprintf("10.0.%d.0/20", i*16),
			AvailableIPAddresses: 4091,
			Tags: map[string]string{
				DiscoveryTag: cluster,
				"Name":       cluster + "-private-" + z,
			},
		})
	}
	s.AddSecurityGroup(SecurityGroup{
		ID:          s.newID("sg-"),
		Name:        cluster + "-node",
		Description: "nodes of " + cluster,
		VpcID:       s.vpcID,
		Tags: map[string]string{
			DiscoveryTag: cluster,
			"Name":       cluster + "-node",
		},
	})
	return s
}

// Region is the simulated region.
func (s *Sim) Region() string { return s.region }

// Zones are the simulated availability zones.
func (s *Sim) Zones() []string { return slices.Clone(s.zones) }

// VpcID is the VPC of the seeded subnets and security group.
func (s *Sim) VpcID() string { return s.vpcID }

// SetCapacity sets how many more instances the offering (instance type,
// zone, spot or on-demand) can launch. Offerings start unlimited; 0 makes
// launches fail with InsufficientInstanceCapacity. A negative n makes the
// offering unlimited again.
func (s *Sim) SetCapacity(instanceType, zone, capacityType string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := offeringKey{instanceType, zone, capacityType}
	if n < 0 {
		delete(s.capacity, k)
		return
	}
	s.capacity[k] = n
}

// InjectFault adds a fault; faults are consulted in the order added and
// the first matching one with requests left applies.
func (s *Sim) InjectFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f2 := f
	s.faults = append(s.faults, &f2)
}

// ClearFaults removes every fault.
func (s *Sim) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Calls counts the requests received (failed ones included) by EC2 action
// or by JSON target (e.g. "AmazonSSM.GetParameter").
func (s *Sim) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.calls)
}

// ResetCalls zeroes the call counts.
func (s *Sim) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.calls)
}

// Instances returns every instance ever launched (terminated ones too),
// in launch order.
func (s *Sim) Instances() []Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Instance, 0, len(s.instances))
	for _, in := range s.instances {
		c := *in
		c.Tags = maps.Clone(in.Tags)
		out = append(out, c)
	}
	return out
}

// LaunchTemplates returns the launch templates that exist.
func (s *Sim) LaunchTemplates() []LaunchTemplate {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]LaunchTemplate, 0, len(s.templates))
	for _, lt := range s.templates {
		out = append(out, lt.snapshot())
	}
	return out
}

// AddSubnet adds a subnet (an ID and VPC are made up when empty).
func (s *Sim) AddSubnet(sn Subnet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sn.ID == "" {
		sn.ID = s.newID("subnet-")
	}
	if sn.VpcID == "" {
		sn.VpcID = s.vpcID
	}
	if sn.AvailableIPAddresses == 0 {
		sn.AvailableIPAddresses = 4091
	}
	if sn.CIDR == "" {
		sn.CIDR = fmt.Sprintf("10.%d.0.0/20", 1+len(s.subnets))
	}
	sn.Tags = maps.Clone(sn.Tags)
	s.subnets = append(s.subnets, &sn)
}

// Subnets is a snapshot of the subnets.
func (s *Sim) Subnets() []Subnet {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Subnet, len(s.subnets))
	for i, sn := range s.subnets {
		out[i] = *sn
		out[i].Tags = maps.Clone(sn.Tags)
	}
	return out
}

// SetSubnetAddresses sets the free private addresses of a subnet (its
// AvailableIpAddressCount); each launch into it takes one, each
// termination gives one back, and at 0 CreateFleet reports
// InsufficientFreeAddressesInSubnet for it. Unknown subnets are ignored.
func (s *Sim) SetSubnetAddresses(id string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sn := s.subnet(id); sn != nil {
		sn.AvailableIPAddresses = n
	}
}

// AddSecurityGroup adds a security group (an ID is made up when empty).
func (s *Sim) AddSecurityGroup(sg SecurityGroup) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sg.ID == "" {
		sg.ID = s.newID("sg-")
	}
	if sg.VpcID == "" {
		sg.VpcID = s.vpcID
	}
	if sg.Name == "" {
		sg.Name = sg.ID
	}
	sg.Tags = maps.Clone(sg.Tags)
	s.securityGroups = append(s.securityGroups, &sg)
}

// AddImage adds an AMI (an ID is made up when empty; Architecture defaults
// to x86_64, OwnerID to the simulator's account).
func (s *Sim) AddImage(im Image) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if im.ID == "" {
		im.ID = s.newID("ami-")
	}
	if im.Architecture == "" {
		im.Architecture = "x86_64"
	}
	if im.OwnerID == "" {
		im.OwnerID = AccountID
	}
	if im.CreationDate.IsZero() {
		im.CreationDate = s.now().UTC()
	}
	im.Tags = maps.Clone(im.Tags)
	for i, old := range s.images {
		if old.ID == im.ID {
			s.images[i] = &im
			return
		}
	}
	s.images = append(s.images, &im)
}

// newID makes a resource ID: prefix and 17 hex digits, deterministic in the
// sequence of calls. Call with s.mu held (or before s is shared).
func (s *Sim) newID(prefix string) string {
	s.idSeq++
	h := mix64(s.idSeq)
	return fmt.Sprintf("%s0%016x", prefix, h)
}

// newUUID makes a deterministic UUID-shaped string.
func (s *Sim) newUUID() string {
	s.idSeq++
	a, b := mix64(s.idSeq), mix64(s.idSeq^0x9e3779b97f4a7c15)
	return fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", uint32(a>>32), uint16(a>>16), uint16(a)&0xfff, uint16(b>>48)&0xfff, b&0xffffffffffff)
}

// mix64 is the splitmix64 finaliser.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// ServeHTTP serves one EC2 query-protocol or JSON-protocol request.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		s.serveJSON(w, r, target)
		return
	}
	s.serveQuery(w, r)
}

func (s *Sim) serveJSON(w http.ResponseWriter, r *http.Request, target string) {
	prefix, op, _ := strings.Cut(target, ".")
	s.mu.Lock()
	s.calls[target]++
	f := s.takeFault(target, op)
	s.mu.Unlock()
	if f != nil {
		if !sleepCtx(r.Context(), f.Latency) {
			return
		}
		if f.Code != "" {
			writeJSONError(w, faultStatus(f), f.Code, "injected fault")
			return
		}
	}
	h := s.JSONHandlers[prefix]
	if h == nil {
		writeJSONError(w, http.StatusBadRequest, "UnknownOperationException", "ec2sim serves no target "+target)
		return
	}
	h.ServeHTTP(w, r)
}

func writeJSONError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	body, _ := json.Marshal(map[string]string{"__type": code, "message": msg})
	_, _ = w.Write(body)
}

// takeFault returns the first fault matching one of names with requests
// left, using up one of its requests. Call with s.mu held.
func (s *Sim) takeFault(names ...string) *Fault {
	for i, f := range s.faults {
		if f.Action != "" && !slices.Contains(names, f.Action) {
			continue
		}
		c := *f
		if f.Count > 0 {
			f.Count--
			if f.Count == 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
		}
		return &c
	}
	return nil
}

func faultStatus(f *Fault) int {
	if f.Status != 0 {
		return f.Status
	}
	switch f.Code {
	case "RequestLimitExceeded", "Throttling", "ThrottlingException", "ServiceUnavailable", "Unavailable":
		return http.StatusServiceUnavailable
	case "InternalError", "InternalFailure":
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Serve runs s on addr until ctx is done, then shuts down gracefully.
func Serve(ctx context.Context, addr string, s *Sim) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return ServeListener(ctx, ln, s)
}

// ServeListener is Serve on a listener the caller opened (e.g. on port 0).
func ServeListener(ctx context.Context, ln net.Listener, s *Sim) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      5 * time.Minute, // injected latency may be long
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    1 << 20,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
