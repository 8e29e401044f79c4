package ec2sim

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"math"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

type launchTemplate struct {
	id, name         string
	createTime       time.Time
	tags             map[string]string
	data             map[string]string
	tagSpecs         map[string]map[string]string
	securityGroupIDs []string
}

func (lt *launchTemplate) snapshot() LaunchTemplate {
	out := LaunchTemplate{
		ID:                lt.id,
		Name:              lt.name,
		CreateTime:        lt.createTime,
		ImageID:           lt.data["ImageId"],
		InstanceType:      lt.data["InstanceType"],
		UserData:          lt.data["UserData"],
		SecurityGroupIDs:  slices.Clone(lt.securityGroupIDs),
		Tags:              maps.Clone(lt.tags),
		TagSpecifications: map[string]map[string]string{},
		MetadataOptions:   map[string]string{},
		Data:              maps.Clone(lt.data),
	}
	for rt, tags := range lt.tagSpecs {
		out.TagSpecifications[rt] = maps.Clone(tags)
	}
	for k, v := range lt.data {
		if rest, ok := strings.CutPrefix(k, "MetadataOptions."); ok {
			out.MetadataOptions[rest] = v
		}
	}
	return out
}

var templateNameRE = regexp.MustCompile(`^[a-zA-Z0-9().\-/_]{3,128}$`)

func (s *Sim) templateByName(name string) *launchTemplate {
	for _, lt := range s.templates {
		if lt.name == name {
			return lt
		}
	}
	return nil
}

func (s *Sim) templateByID(id string) *launchTemplate {
	for _, lt := range s.templates {
		if lt.id == id {
			return lt
		}
	}
	return nil
}

func (s *Sim) createLaunchTemplate(q query, b *xb) *apiError {
	name := q.get("LaunchTemplateName")
	if name == "" {
		return errMissingParam("LaunchTemplateName")
	}
	if !templateNameRE.MatchString(name) {
		return errInvalidParam("Launch template name must be between 3 and 128 characters, and may contain letters, numbers, and the following characters: - ( ) . / _.'")
	}
	if !q.has("LaunchTemplateData") && len(q.withPrefix("LaunchTemplateData")) == 0 {
		return errMissingParam("LaunchTemplateData")
	}
	if s.templateByName(name) != nil {
		return errNotFound("InvalidLaunchTemplateName.AlreadyExistsException", "Launch template name already in use.")
	}
	data := q.withPrefix("LaunchTemplateData")
	if err := checkTemplateData(data); err != nil {
		return err
	}
	lt := &launchTemplate{
		id:               s.newID("lt-"),
		name:             name,
		createTime:       s.now().UTC(),
		data:             data,
		tagSpecs:         q.tagSpecs("LaunchTemplateData.TagSpecification"),
		securityGroupIDs: q.list("LaunchTemplateData.SecurityGroupId"),
	}
	specs := q.tagSpecs("TagSpecification")
	lt.tags = specs["launch-template"]
	if lt.tags == nil {
		lt.tags = map[string]string{}
	}
	s.templates = append(s.templates, lt)
	b.open("launchTemplate")
	writeTemplate(b, lt)
	b.close("launchTemplate")
	return nil
}

func writeTemplate(b *xb, lt *launchTemplate) {
	b.el("launchTemplateId", lt.id)
	b.el("launchTemplateName", lt.name)
	b.time("createTime", lt.createTime)
	b.el("createdBy", "arn:aws:iam::"+AccountID+":user/ec2sim")
	b.num("defaultVersionNumber", 1)
	b.num("latestVersionNumber", 1)
	b.tagSet(lt.tags)
}

func templateField(lt *launchTemplate, name string) ([]string, bool) {
	if lt == nil {
		lt = &launchTemplate{}
	}
	switch name {
	case "launch-template-name":
		return []string{lt.name}, true
	case "launch-template-id":
		return []string{lt.id}, true
	case "create-time":
		return []string{fmtTime(lt.createTime)}, true
	}
	return nil, false
}

func (s *Sim) describeLaunchTemplates(q query, b *xb) *apiError {
	fs := q.filters()
	if err := checkFilters(fs, templateField); err != nil {
		return err
	}
	names, ids := q.list("LaunchTemplateName"), q.list("LaunchTemplateId")
	for _, n := range names {
		if s.templateByName(n) == nil {
			return errNotFound("InvalidLaunchTemplateName.NotFoundException", "At least one of the launch templates specified in the request does not exist.")
		}
	}
	for _, id := range ids {
		if s.templateByID(id) == nil {
			return errNotFound("InvalidLaunchTemplateId.NotFound", "The specified launch template, with template ID %s, does not exist.", id)
		}
	}
	var out []*launchTemplate
	for _, lt := range s.templates {
		if len(names) > 0 && !slices.Contains(names, lt.name) {
			continue
		}
		if len(ids) > 0 && !slices.Contains(ids, lt.id) {
			continue
		}
		if matchFilters(lt, lt.tags, fs, templateField) {
			out = append(out, lt)
		}
	}
	pg, next, err := page(q, out, 0, 1, 200)
	if err != nil {
		return err
	}
	b.open("launchTemplates")
	for _, lt := range pg {
		b.open("item")
		writeTemplate(b, lt)
		b.close("item")
	}
	b.close("launchTemplates")
	b.opt("nextToken", next)
	return nil
}

func (s *Sim) deleteLaunchTemplate(q query, b *xb) *apiError {
	var lt *launchTemplate
	switch {
	case q.get("LaunchTemplateId") != "":
		id := q.get("LaunchTemplateId")
		if lt = s.templateByID(id); lt == nil {
			return errNotFound("InvalidLaunchTemplateId.NotFound", "The specified launch template, with template ID %s, does not exist.", id)
		}
	case q.get("LaunchTemplateName") != "":
		if lt = s.templateByName(q.get("LaunchTemplateName")); lt == nil {
			return errNotFound("InvalidLaunchTemplateName.NotFoundException", "The specified launch template, with template name %s, does not exist.", q.get("LaunchTemplateName"))
		}
	default:
		return errMissingParam("LaunchTemplateId or LaunchTemplateName")
	}
	s.templates = slices.DeleteFunc(s.templates, func(x *launchTemplate) bool { return x == lt })
	b.open("launchTemplate")
	writeTemplate(b, lt)
	b.close("launchTemplate")
	return nil
}

func (s *Sim) image(id string) *Image {
	for _, im := range s.images {
		if im.ID == id {
			return im
		}
	}
	return nil
}

// fleetRecord remembers a CreateFleet answer for its ClientToken.
type fleetRecord struct {
	at     time.Time
	digest [32]byte
	result *fleetResult
}

type fleetResult struct {
	fleetID   string
	errors    []fleetError
	instances []fleetInstances
}

// ltSpec is the LaunchTemplateAndOverrides echo of a fleet answer.
type ltSpec struct {
	templateID, templateName, version string
	instanceType, subnetID, zone      string
	imageID                           string
	priority                          string
	weightedCapacity                  string
}

type fleetError struct {
	spec      ltSpec
	lifecycle string
	code, msg string
}

type fleetInstances struct {
	spec      ltSpec
	lifecycle string
	ids       []string
}

// candidate is one (override, zone) pool a fleet may launch into.
type candidate struct {
	order    int // request order
	spec     ltSpec
	lt       *launchTemplate
	subnet   *Subnet
	priority float64
	price    float64
}

func (s *Sim) createFleet(q query, b *xb) *apiError {
	if t := q.get("Type"); t != "instant" {
		if t == "" {
			t = "maintain"
		}
		return errInvalidParam("ec2sim supports only CreateFleet Type=instant, not %s", t)
	}
	now := s.now()
	token := q.get("ClientToken")
	digest := requestDigest(q)
	if rec, err := s.replayFleet(token, digest, now); err != nil || rec != nil {
		if rec != nil {
			writeFleetResult(b, rec.result)
		}
		return err
	}
	req, err := parseFleetRequest(q)
	if err != nil {
		return err
	}
	fb := &fleetBuild{q: q, req: req, res: &fleetResult{fleetID: "fleet-" + s.newUUID()}}
	cands, err := s.fleetCandidates(fb)
	if err != nil {
		return err
	}
	s.fillFleet(fb, cands, token)
	if token != "" {
		s.fleets[token] = &fleetRecord{at: now, digest: digest, result: fb.res}
	}
	writeFleetResult(b, fb.res)
	return nil
}

// replayFleet returns the recorded answer to an earlier request with the
// same ClientToken (nil when there is none), after forgetting expired
// tokens; the same token with other parameters is an error.
func (s *Sim) replayFleet(token string, digest [32]byte, now time.Time) (*fleetRecord, *apiError) {
	if token == "" {
		return nil, nil
	}
	for tk, rec := range s.fleets {
		if now.Sub(rec.at) > idempotencyWindow {
			delete(s.fleets, tk)
		}
	}
	rec, ok := s.fleets[token]
	if !ok {
		return nil, nil
	}
	if rec.digest != digest {
		return nil, &apiError{http.StatusBadRequest, "IdempotentParameterMismatch", "Client token '" + token + "' was used with different parameters."}
	}
	return rec, nil
}

// fleetRequest is the capacity and strategies of a CreateFleet.
type fleetRequest struct {
	spotN, odN               int
	spotStrategy, odStrategy string
	configs                  []int // LaunchTemplateConfigs indices
	lifecycles               []string
}

func parseFleetRequest(q query) (*fleetRequest, *apiError) {
	r := &fleetRequest{}
	if err := r.parseCapacity(q); err != nil {
		return nil, err
	}
	if v := q.get("TargetCapacitySpecification.TargetCapacityUnitType"); v != "" && v != "units" {
		return nil, errInvalidParam("ec2sim supports only TargetCapacityUnitType=units")
	}
	if r.configs = q.indices("LaunchTemplateConfigs"); len(r.configs) == 0 {
		return nil, errMissingParam("LaunchTemplateConfigs")
	}
	if err := r.parseStrategies(q); err != nil {
		return nil, err
	}
	if r.spotN > 0 {
		r.lifecycles = append(r.lifecycles, CapacityTypeSpot)
	}
	if r.odN > 0 {
		r.lifecycles = append(r.lifecycles, CapacityTypeOnDemand)
	}
	return r, nil
}

// parseCapacity splits TotalTargetCapacity into spot and on-demand.
func (r *fleetRequest) parseCapacity(q query) *apiError {
	total, err := q.integer("TargetCapacitySpecification.TotalTargetCapacity", -1)
	if err != nil {
		return err
	}
	if total < 0 {
		return errMissingParam("TargetCapacitySpecification.TotalTargetCapacity")
	}
	if r.spotN, err = q.integer("TargetCapacitySpecification.SpotTargetCapacity", 0); err != nil {
		return err
	}
	if r.odN, err = q.integer("TargetCapacitySpecification.OnDemandTargetCapacity", 0); err != nil {
		return err
	}
	rest := total - r.spotN - r.odN
	if rest < 0 {
		return errInvalidParam("The sum of SpotTargetCapacity and OnDemandTargetCapacity exceeds TotalTargetCapacity.")
	}
	switch def := q.get("TargetCapacitySpecification.DefaultTargetCapacityType"); def {
	case CapacityTypeSpot:
		r.spotN += rest
	case CapacityTypeOnDemand:
		r.odN += rest
	case "":
		if rest > 0 {
			return errMissingParam("TargetCapacitySpecification.DefaultTargetCapacityType")
		}
	default:
		return errInvalidParam("Value (%s) for parameter DefaultTargetCapacityType is invalid. Valid values: spot, on-demand, capacity-block", def)
	}
	return nil
}

func (r *fleetRequest) parseStrategies(q query) *apiError {
	r.spotStrategy = firstNonEmpty(q.get("SpotOptions.AllocationStrategy"), "lowest-price")
	r.odStrategy = firstNonEmpty(q.get("OnDemandOptions.AllocationStrategy"), "lowest-price")
	switch r.spotStrategy {
	case "lowest-price", "diversified", "capacity-optimized", "capacity-optimized-prioritized", "price-capacity-optimized",
		"lowestPrice", "capacityOptimized", "capacityOptimizedPrioritized", "priceCapacityOptimized":
	default:
		return errInvalidParam("Value (%s) for parameter SpotOptions.AllocationStrategy is invalid.", r.spotStrategy)
	}
	switch r.odStrategy {
	case "lowest-price", "prioritized", "lowestPrice":
	default:
		return errInvalidParam("Value (%s) for parameter OnDemandOptions.AllocationStrategy is invalid.", r.odStrategy)
	}
	return nil
}

// fleetBuild is one CreateFleet in progress.
type fleetBuild struct {
	q     query
	req   *fleetRequest
	res   *fleetResult
	order int // candidates made so far
}

// addErr records an error for an override, once per (override,
// lifecycle, code).
func (fb *fleetBuild) addErr(spec ltSpec, lifecycle, code, msg string) {
	for _, e := range fb.res.errors {
		if e.spec == spec && e.lifecycle == lifecycle && e.code == code {
			return
		}
	}
	fb.res.errors = append(fb.res.errors, fleetError{spec, lifecycle, code, msg})
}

// addErrAll records an error for an override under every lifecycle the
// fleet asks for.
func (fb *fleetBuild) addErrAll(spec ltSpec, code, msg string) {
	for _, lc := range fb.req.lifecycles {
		fb.addErr(spec, lc, code, msg)
	}
}

// fleetCandidates turns every (launch template, override) of the request
// into the pools it may launch into, recording the invalid ones as
// errors.
func (s *Sim) fleetCandidates(fb *fleetBuild) ([]*candidate, *apiError) {
	var cands []*candidate
	for _, ci := range fb.req.configs {
		p := fmt.Sprintf("LaunchTemplateConfigs.%d", ci)
		lt, ltErr, err := s.configTemplate(fb.q, p)
		if err != nil {
			return nil, err
		}
		overrides := fb.q.indices(p + ".Overrides")
		if len(overrides) == 0 {
			overrides = []int{0} // the template alone
		}
		for _, oi := range overrides {
			spec := overrideSpec(fb.q, p, oi, lt)
			if ltErr != nil {
				fb.addErrAll(spec, ltErr.Code, ltErr.Message)
				continue
			}
			cands = append(cands, s.overrideCandidates(fb, spec, lt)...)
		}
	}
	return cands, nil
}

// configTemplate finds the launch template of config prefix p. A missing
// template or version is a per-override error (ltErr); a config naming
// none fails the request.
func (s *Sim) configTemplate(q query, p string) (lt *launchTemplate, ltErr, err *apiError) {
	ltID := q.get(p + ".LaunchTemplateSpecification.LaunchTemplateId")
	ltName := q.get(p + ".LaunchTemplateSpecification.LaunchTemplateName")
	version := q.get(p + ".LaunchTemplateSpecification.Version")
	switch {
	case ltID != "":
		if lt = s.templateByID(ltID); lt == nil {
			return nil, errNotFound("InvalidLaunchTemplateId.NotFound", "The specified launch template, with template ID %s, does not exist.", ltID), nil
		}
	case ltName != "":
		if lt = s.templateByName(ltName); lt == nil {
			return nil, errNotFound("InvalidLaunchTemplateName.NotFoundException", "The specified launch template, with template name %s, does not exist.", ltName), nil
		}
	default:
		return nil, nil, errMissingParam(p + ".LaunchTemplateSpecification.LaunchTemplateId or LaunchTemplateName")
	}
	if version != "" && version != "$Latest" && version != "$Default" && version != "1" {
		return nil, errNotFound("InvalidLaunchTemplateVersion.NotFound", "The specified launch template version %s does not exist.", version), nil
	}
	return lt, nil, nil
}

// overrideSpec reads override oi of config prefix p (0: the template
// alone) as EC2 echoes it.
func overrideSpec(q query, p string, oi int, lt *launchTemplate) ltSpec {
	spec := ltSpec{
		templateID:   q.get(p + ".LaunchTemplateSpecification.LaunchTemplateId"),
		templateName: q.get(p + ".LaunchTemplateSpecification.LaunchTemplateName"),
		version:      q.get(p + ".LaunchTemplateSpecification.Version"),
	}
	if oi != 0 {
		op := fmt.Sprintf("%s.Overrides.%d", p, oi)
		spec.instanceType = q.get(op + ".InstanceType")
		spec.subnetID = q.get(op + ".SubnetId")
		spec.zone = q.get(op + ".AvailabilityZone")
		spec.imageID = q.get(op + ".ImageId")
		spec.priority = q.get(op + ".Priority")
		spec.weightedCapacity = q.get(op + ".WeightedCapacity")
	}
	if lt != nil && spec.templateID == "" && spec.templateName == "" {
		spec.templateID = lt.id
	}
	return spec
}

// overrideCandidates checks one override and returns a candidate per
// subnet it may launch into.
func (s *Sim) overrideCandidates(fb *fleetBuild, spec ltSpec, lt *launchTemplate) []*candidate {
	itype := firstNonEmpty(spec.instanceType, lt.data["InstanceType"])
	if _, ok := s.types[itype]; !ok {
		fb.addErrAll(spec, "InvalidParameterValue", fmt.Sprintf("The instance type '%s' is not supported in %s.", itype, s.region))
		return nil
	}
	if img := firstNonEmpty(spec.imageID, lt.data["ImageId"]); img == "" || (!strings.HasPrefix(img, "resolve:ssm:") && s.image(img) == nil) {
		fb.addErrAll(spec, "InvalidAMIID.NotFound", fmt.Sprintf("The image id '[%s]' does not exist", img))
		return nil
	}
	subnets, code, msg := s.overrideSubnets(spec)
	if code != "" {
		fb.addErrAll(spec, code, msg)
		return nil
	}
	prio := math.Inf(1)
	if f, err := strconv.ParseFloat(spec.priority, 64); err == nil {
		prio = f
	}
	var out []*candidate
	for _, sn := range subnets {
		fb.order++
		cs := spec
		cs.instanceType = itype
		out = append(out, &candidate{order: fb.order, spec: cs, lt: lt, subnet: sn, priority: prio})
	}
	return out
}

// overrideSubnets are the subnets an override may launch into: its
// subnet, the first subnet of its zone, or the first subnet of each zone;
// code and msg say why there are none.
func (s *Sim) overrideSubnets(spec ltSpec) (subnets []*Subnet, code, msg string) {
	switch {
	case spec.subnetID != "":
		sn := s.subnet(spec.subnetID)
		if sn == nil {
			return nil, "InvalidSubnetID.NotFound", fmt.Sprintf("The subnet ID '%s' does not exist", spec.subnetID)
		}
		if spec.zone != "" && spec.zone != sn.Zone {
			return nil, "InvalidParameterValue", fmt.Sprintf("Subnet %s is not in availability zone %s", sn.ID, spec.zone)
		}
		return []*Subnet{sn}, "", ""
	case spec.zone != "":
		for _, sn := range s.subnets {
			if sn.Zone == spec.zone {
				return []*Subnet{sn}, "", ""
			}
		}
		return nil, "InvalidParameterValue", fmt.Sprintf("No subnet in availability zone %s", spec.zone)
	}
	seen := map[string]bool{}
	for _, sn := range s.subnets {
		if !seen[sn.Zone] {
			seen[sn.Zone] = true
			subnets = append(subnets, sn)
		}
	}
	return subnets, "", ""
}

// fillFleet launches the requested capacity, one instance at a time into
// the pool the strategy picks, grouping the instances by (override,
// lifecycle) as EC2 reports them.
func (s *Sim) fillFleet(fb *fleetBuild, cands []*candidate, token string) {
	fleetTags := fb.q.tagSpecs("TagSpecification")
	launched := map[string]*fleetInstances{}
	var launchOrder []string
	reservationID := s.newID("r-")
	for _, lc := range fb.req.lifecycles {
		want, strategy := fb.req.spotN, fb.req.spotStrategy
		if lc == CapacityTypeOnDemand {
			want, strategy = fb.req.odN, fb.req.odStrategy
		}
		for range want {
			c := s.pick(cands, lc, strategy, fb.addErr)
			if c == nil {
				break
			}
			k := offeringKey{c.spec.instanceType, c.subnet.Zone, lc}
			if n, ok := s.capacity[k]; ok {
				s.capacity[k] = n - 1
			}
			in := s.launch(c, lc, token, fb.res.fleetID, reservationID, fleetTags["instance"])
			key := fmt.Sprintf("%d/%s", c.order, lc)
			fi := launched[key]
			if fi == nil {
				echo := c.spec
				// EC2 echoes the override as sent; fill the zone it chose.
				if echo.subnetID == "" && echo.zone == "" {
					echo.zone = c.subnet.Zone
				}
				fi = &fleetInstances{spec: echo, lifecycle: lc}
				launched[key] = fi
				launchOrder = append(launchOrder, key)
			}
			fi.ids = append(fi.ids, in.ID)
		}
	}
	for _, k := range launchOrder {
		fb.res.instances = append(fb.res.instances, *launched[k])
	}
}

// pick chooses the pool for one more instance of lifecycle lc, reporting
// pools passed over for lack of capacity as fleet errors.
func (s *Sim) pick(cands []*candidate, lc, strategy string, addErr func(ltSpec, string, string, string)) *candidate {
	if len(cands) == 0 {
		return nil
	}
	for _, c := range cands {
		c.price = s.price(c.spec.instanceType, c.subnet.Zone, lc)
	}
	remaining := func(c *candidate) int {
		if n, ok := s.capacity[offeringKey{c.spec.instanceType, c.subnet.Zone, lc}]; ok {
			return n
		}
		return math.MaxInt
	}
	ranked := slices.Clone(cands)
	byPrice := func(a, b *candidate) int {
		if a.price != b.price {
			if a.price < b.price {
				return -1
			}
			return 1
		}
		return a.order - b.order
	}
	byPriority := func(a, b *candidate) int {
		if a.priority != b.priority {
			if a.priority < b.priority {
				return -1
			}
			return 1
		}
		return byPrice(a, b)
	}
	switch strategy {
	case "prioritized", "capacity-optimized-prioritized", "capacityOptimizedPrioritized":
		slices.SortStableFunc(ranked, byPriority)
	case "capacity-optimized", "capacityOptimized":
		slices.SortStableFunc(ranked, func(a, b *candidate) int {
			ra, rb := remaining(a), remaining(b)
			if ra != rb {
				if ra > rb {
					return -1
				}
				return 1
			}
			return byPrice(a, b)
		})
	default: // lowest-price, price-capacity-optimized, diversified
		slices.SortStableFunc(ranked, byPrice)
	}
	for _, c := range ranked {
		echo := c.spec
		if echo.subnetID == "" && echo.zone == "" {
			echo.zone = c.subnet.Zone
		}
		if c.subnet.AvailableIPAddresses <= 0 {
			// Each instance takes a private address of its subnet
			// (DescribeSubnets' AvailableIpAddressCount); a full subnet
			// fails with InsufficientFreeAddressesInSubnet, "The specified
			// subnet does not contain enough free private IP addresses to
			// fulfill your request" (EC2 API Reference, "Error codes for
			// the Amazon EC2 API").
			addErr(echo, lc, "InsufficientFreeAddressesInSubnet",
				fmt.Sprintf("There are not enough free addresses in subnet '%s' to satisfy the requested number of instances.", c.subnet.ID))
			continue
		}
		if remaining(c) > 0 {
			// The account's vCPU quota (see quota.go) is checked after
			// EC2's capacity: a pool with room still refuses a launch the
			// quota does not allow.
			code, msg := s.quotaError(c.spec.instanceType, lc)
			if code == "" {
				return c
			}
			addErr(echo, lc, code, msg)
			continue
		}
		addErr(echo, lc, "InsufficientInstanceCapacity",
			fmt.Sprintf("We currently do not have sufficient %s capacity in the Availability Zone you requested (%s). Our system will be working on provisioning additional capacity. You can currently get %s capacity by not specifying an Availability Zone in your request or choosing %s.",
				c.spec.instanceType, c.subnet.Zone, c.spec.instanceType, strings.Join(s.otherZones(c.subnet.Zone), ", ")))
	}
	return nil
}

func (s *Sim) otherZones(z string) []string {
	var out []string
	for _, zz := range s.zones {
		if zz != z {
			out = append(out, zz)
		}
	}
	return out
}

func (s *Sim) launch(c *candidate, lc, token, fleetID, reservationID string, fleetTags map[string]string) *Instance {
	s.ipSeq++
	ip := fmt.Sprintf("10.0.%d.%d", (s.ipSeq/250)%256, 4+s.ipSeq%250)
	dns := "ip-" + strings.ReplaceAll(ip, ".", "-")
	if s.region == "us-east-1" {
		dns += ".ec2.internal"
	} else {
		dns += "." + s.region + ".compute.internal"
	}
	tags := map[string]string{}
	maps.Copy(tags, c.lt.tagSpecs["instance"])
	maps.Copy(tags, fleetTags)
	tags["aws:ec2:fleet-id"] = fleetID
	in := &Instance{
		ID:               s.newID("i-"),
		InstanceType:     c.spec.instanceType,
		Zone:             c.subnet.Zone,
		SubnetID:         c.subnet.ID,
		VpcID:            c.subnet.VpcID,
		CapacityType:     lc,
		State:            StateRunning,
		Tags:             tags,
		LaunchTime:       s.now().UTC().Truncate(time.Second),
		ImageID:          firstNonEmpty(c.spec.imageID, c.lt.data["ImageId"]),
		ClientToken:      token,
		FleetID:          fleetID,
		LaunchTemplateID: c.lt.id,
		PrivateIP:        ip,
		PrivateDNSName:   dns,
		Architecture:     archName(s.types[c.spec.instanceType].Arch),
		reservationID:    reservationID,
	}
	s.instances = append(s.instances, in)
	c.subnet.AvailableIPAddresses--
	return in
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// requestDigest hashes the request parameters other than ClientToken and
// the protocol envelope.
func requestDigest(q query) [32]byte {
	keys := make([]string, 0, len(q.v))
	for k := range q.v {
		switch k {
		case "ClientToken", "Action", "Version":
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%q\n", k, q.v[k])
	}
	var d [32]byte
	copy(d[:], h.Sum(nil))
	return d
}

func writeLTSpec(b *xb, sp ltSpec) {
	b.open("launchTemplateAndOverrides")
	b.open("launchTemplateSpecification")
	b.opt("launchTemplateId", sp.templateID)
	b.opt("launchTemplateName", sp.templateName)
	b.opt("version", sp.version)
	b.close("launchTemplateSpecification")
	b.open("overrides")
	b.opt("instanceType", sp.instanceType)
	b.opt("subnetId", sp.subnetID)
	b.opt("availabilityZone", sp.zone)
	b.opt("imageId", sp.imageID)
	b.opt("priority", sp.priority)
	b.opt("weightedCapacity", sp.weightedCapacity)
	b.close("overrides")
	b.close("launchTemplateAndOverrides")
}

func writeFleetResult(b *xb, r *fleetResult) {
	b.el("fleetId", r.fleetID)
	b.open("errorSet")
	for _, e := range r.errors {
		b.open("item")
		writeLTSpec(b, e.spec)
		b.el("lifecycle", e.lifecycle)
		b.el("errorCode", e.code)
		b.el("errorMessage", e.msg)
		b.close("item")
	}
	b.close("errorSet")
	b.open("fleetInstanceSet")
	for _, fi := range r.instances {
		b.open("item")
		writeLTSpec(b, fi.spec)
		b.el("lifecycle", fi.lifecycle)
		b.items("instanceIds", fi.ids)
		b.el("instanceType", fi.spec.instanceType)
		b.el("platform", "")
		b.close("item")
	}
	b.close("fleetInstanceSet")
}

// visible reports whether DescribeInstances still shows in.
func (s *Sim) visible(in *Instance) bool {
	return in.State != StateTerminated || s.now().Sub(in.TerminateTime) < terminatedVisibleFor
}

func (s *Sim) instance(id string) *Instance {
	for _, in := range s.instances {
		if in.ID == id {
			return in
		}
	}
	return nil
}

func instanceField(in *Instance, name string) ([]string, bool) {
	if in == nil {
		in = &Instance{}
	}
	switch name {
	case "instance-id":
		return []string{in.ID}, true
	case "instance-type":
		return []string{in.InstanceType}, true
	case "instance-state-name":
		return []string{in.State}, true
	case "instance-state-code":
		return []string{strconv.Itoa(stateCode(in.State))}, true
	case "availability-zone":
		return []string{in.Zone}, true
	case "subnet-id":
		return []string{in.SubnetID}, true
	case "vpc-id":
		return []string{in.VpcID}, true
	case "image-id":
		return []string{in.ImageID}, true
	case "client-token":
		return []string{in.ClientToken}, true
	case "instance-lifecycle":
		if in.CapacityType == CapacityTypeSpot {
			return []string{"spot"}, true
		}
		return nil, true
	case "private-dns-name":
		return []string{in.PrivateDNSName}, true
	case "private-ip-address":
		return []string{in.PrivateIP}, true
	case "architecture":
		return []string{in.Architecture}, true
	case "reservation-id":
		return []string{in.reservationID}, true
	case "owner-id":
		return []string{AccountID}, true
	}
	return nil, false
}

func stateCode(state string) int {
	switch state {
	case StatePending:
		return 0
	case StateRunning:
		return 16
	case StateShuttingDown:
		return 32
	case StateTerminated:
		return 48
	case "stopping":
		return 64
	case "stopped":
		return 80
	}
	return 0
}

func (s *Sim) describeInstances(q query, b *xb) *apiError {
	fs := q.filters()
	if err := checkFilters(fs, instanceField); err != nil {
		return err
	}
	ids := q.list("InstanceId")
	if len(ids) > 0 && q.has("MaxResults") {
		return errInvalidParam("The parameter instancesSet cannot be used with the parameter maxResults")
	}
	var missing []string
	for _, id := range ids {
		if in := s.instance(id); in == nil || !s.visible(in) {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return errNotFound("InvalidInstanceID.NotFound", "The instance IDs '%s' do not exist", strings.Join(missing, ", "))
	}
	var out []*Instance
	for _, in := range s.instances {
		if !s.visible(in) {
			continue
		}
		if len(ids) > 0 && !slices.Contains(ids, in.ID) {
			continue
		}
		if matchFilters(in, in.Tags, fs, instanceField) {
			out = append(out, in)
		}
	}
	pg, next, err := page(q, out, 0, 5, 1000)
	if err != nil {
		return err
	}
	b.open("reservationSet")
	for i := 0; i < len(pg); {
		j := i
		for j < len(pg) && pg[j].reservationID == pg[i].reservationID {
			j++
		}
		b.open("item")
		b.el("reservationId", pg[i].reservationID)
		b.el("ownerId", AccountID)
		b.el("requesterId", "AIDAEC2SIMFLEET")
		b.open("groupSet")
		b.close("groupSet")
		b.open("instancesSet")
		for _, in := range pg[i:j] {
			s.writeInstance(b, in)
		}
		b.close("instancesSet")
		b.close("item")
		i = j
	}
	b.close("reservationSet")
	b.opt("nextToken", next)
	return nil
}

func (s *Sim) writeInstance(b *xb, in *Instance) {
	b.open("item")
	b.el("instanceId", in.ID)
	b.el("imageId", in.ImageID)
	b.open("instanceState")
	b.num("code", int64(stateCode(in.State)))
	b.el("name", in.State)
	b.close("instanceState")
	running := in.State != StateTerminated
	if running {
		b.el("privateDnsName", in.PrivateDNSName)
	} else {
		b.el("privateDnsName", "")
	}
	b.el("dnsName", "")
	b.num("amiLaunchIndex", 0)
	b.el("instanceType", in.InstanceType)
	b.time("launchTime", in.LaunchTime)
	b.open("placement")
	b.el("availabilityZone", in.Zone)
	b.el("availabilityZoneId", s.zoneID(in.Zone))
	b.el("groupName", "")
	b.el("tenancy", "default")
	b.close("placement")
	b.open("monitoring")
	b.el("state", "disabled")
	b.close("monitoring")
	if running {
		b.el("subnetId", in.SubnetID)
		b.el("vpcId", in.VpcID)
		b.el("privateIpAddress", in.PrivateIP)
	}
	b.el("architecture", in.Architecture)
	b.el("rootDeviceType", "ebs")
	b.el("rootDeviceName", "/dev/xvda")
	b.el("virtualizationType", "hvm")
	b.el("hypervisor", "xen")
	b.opt("clientToken", in.ClientToken)
	if in.CapacityType == CapacityTypeSpot {
		b.el("instanceLifecycle", "spot")
		b.el("spotInstanceRequestId", "sir-"+strings.TrimPrefix(in.ID, "i-")[:8])
	}
	if in.State == StateTerminated {
		b.el("reason", "User initiated ("+in.TerminateTime.UTC().Format("2006-01-02 15:04:05 MST")+")")
		b.open("stateReason")
		b.el("code", "Client.UserInitiatedShutdown")
		b.el("message", "Client.UserInitiatedShutdown: User initiated shutdown")
		b.close("stateReason")
	}
	b.boolean("ebsOptimized", true)
	b.boolean("enaSupport", true)
	b.el("platformDetails", "Linux/UNIX")
	b.el("usageOperation", "RunInstances")
	b.el("bootMode", "uefi")
	b.open("metadataOptions")
	b.el("state", "applied")
	b.el("httpTokens", "required")
	b.num("httpPutResponseHopLimit", 1)
	b.el("httpEndpoint", "enabled")
	b.close("metadataOptions")
	b.tagSet(in.Tags)
	b.close("item")
}

func (s *Sim) terminateInstances(q query, b *xb) *apiError {
	ids := q.list("InstanceId")
	if len(ids) == 0 {
		return errMissingParam("InstanceId")
	}
	var missing []string
	for _, id := range ids {
		if in := s.instance(id); in == nil || !s.visible(in) {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return errNotFound("InvalidInstanceID.NotFound", "The instance IDs '%s' do not exist", strings.Join(missing, ", "))
	}
	now := s.now()
	b.open("instancesSet")
	for _, id := range ids {
		in := s.instance(id)
		prev := in.State
		cur := StateTerminated
		if prev != StateTerminated {
			// EC2 answers shutting-down; the simulator finishes at once.
			cur = StateShuttingDown
			in.State = StateTerminated
			in.TerminateTime = now
			if sn := s.subnet(in.SubnetID); sn != nil {
				sn.AvailableIPAddresses++ // its address is free again
			}
		}
		b.open("item")
		b.el("instanceId", id)
		b.open("currentState")
		b.num("code", int64(stateCode(cur)))
		b.el("name", cur)
		b.close("currentState")
		b.open("previousState")
		b.num("code", int64(stateCode(prev)))
		b.el("name", prev)
		b.close("previousState")
		b.close("item")
	}
	b.close("instancesSet")
	return nil
}

func (s *Sim) createTags(q query, b *xb) *apiError {
	ids := q.list("ResourceId")
	if len(ids) == 0 {
		return errMissingParam("ResourceId")
	}
	tags := q.tags("Tag")
	var targets []map[string]string
	for _, id := range ids {
		var t *map[string]string
		switch {
		case strings.HasPrefix(id, "i-"):
			if in := s.instance(id); in != nil && s.visible(in) {
				t = &in.Tags
			} else {
				return errNotFound("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
			}
		case strings.HasPrefix(id, "lt-"):
			if lt := s.templateByID(id); lt != nil {
				t = &lt.tags
			} else {
				return errNotFound("InvalidLaunchTemplateId.NotFound", "The specified launch template, with template ID %s, does not exist.", id)
			}
		case strings.HasPrefix(id, "subnet-"):
			if sn := s.subnet(id); sn != nil {
				t = &sn.Tags
			} else {
				return errNotFound("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", id)
			}
		case strings.HasPrefix(id, "sg-"):
			for _, sg := range s.securityGroups {
				if sg.ID == id {
					t = &sg.Tags
				}
			}
			if t == nil {
				return errNotFound("InvalidGroup.NotFound", "The security group '%s' does not exist", id)
			}
		case strings.HasPrefix(id, "ami-"):
			if im := s.image(id); im != nil {
				t = &im.Tags
			} else {
				return errNotFound("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", id)
			}
		default:
			return errNotFound("InvalidID", "The ID '%s' is not valid", id)
		}
		if *t == nil {
			*t = map[string]string{}
		}
		targets = append(targets, *t)
	}
	for _, t := range targets {
		maps.Copy(t, tags)
	}
	b.boolean("return", true)
	return nil
}
