{{/*
Name prefix of every object: flotilla, or fullnameOverride.
*/}}
{{- define "flotilla.fullname" -}}
{{- .Values.fullnameOverride | default "flotilla" | trunc 50 | trimSuffix "-" -}}
{{- end -}}

{{/*
Name of one service's objects: flotilla-<component>.
Call with (dict "root" $ "component" "solver").
*/}}
{{- define "flotilla.componentName" -}}
{{- printf "%s-%s" (include "flotilla.fullname" .root) .component -}}
{{- end -}}

{{/*
Selector labels of one service's pods.
*/}}
{{- define "flotilla.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flotilla.componentName" . }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{/*
Labels of one service's objects.
*/}}
{{- define "flotilla.labels" -}}
{{ include "flotilla.selectorLabels" . }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: flotilla
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
In-cluster gRPC address of a service: the headless Service's DNS name.
*/}}
{{- define "flotilla.addr" -}}
{{- $c := index .root.Values .component -}}
{{- printf "%s.%s.svc:%v" (include "flotilla.componentName" .) .root.Release.Namespace $c.grpcPort -}}
{{- end -}}

{{- define "flotilla.clusterName" -}}
{{- required "clusterName is required (the EKS cluster's name)" .Values.clusterName -}}
{{- end -}}

{{- define "flotilla.region" -}}
{{- required "region is required (the cluster's AWS region)" .Values.region -}}
{{- end -}}

{{/*
The Deployment of one service. Call with
(dict "root" $ "component" "solver" "args" (list ...) "env" (list ...)).
Every service serves mutual-TLS gRPC on its gRPC port and plain HTTP
/metrics and /healthz on its metrics port. The probes use /healthz: the
kubelet's gRPC probe cannot present a client certificate.
*/}}
{{- define "flotilla.deployment" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $c := index $v .component -}}
{{- $sel := include "flotilla.selectorLabels" . }}
{{- $tls := not $v.tls.insecure }}
{{- $env := list }}
{{- with include "flotilla.goMemLimit" . }}
{{- $env = append $env (dict "name" "GOMEMLIMIT" "value" .) }}
{{- end }}
{{- $env = concat $env (.env | default list) ($c.extraEnv | default list) }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "flotilla.componentName" . }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "flotilla.labels" . | nindent 4 }}
spec:
  replicas: {{ $c.replicas }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- $sel | nindent 6 }}
  {{- if gt (int $c.replicas) 1 }}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxUnavailable: 0, maxSurge: 1}
  {{- end }}
  template:
    metadata:
      labels:
        {{- include "flotilla.labels" . | nindent 8 }}
      {{- with $c.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ include "flotilla.componentName" . }}
      automountServiceAccountToken: {{ include "flotilla.kubeAPI" . }}
      priorityClassName: {{ $v.priorityClassName }}
      enableServiceLinks: false
      terminationGracePeriodSeconds: 30
      {{- with $v.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $v.podSecurityContext | nindent 8 }}
      {{- if $v.avoidManagedNodes }}
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
              - matchExpressions:
                  - key: karpenter.sh/nodepool
                    operator: DoesNotExist
      {{- end }}
      {{- if and $c.topologySpread (gt (int $c.replicas) 1) }}
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: topology.kubernetes.io/zone
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- $sel | nindent 14 }}
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: DoNotSchedule
          labelSelector:
            matchLabels:
              {{- $sel | nindent 14 }}
      {{- end }}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ .component }}
          image: {{ printf "%s-%s:%s" $v.image.repository .component ($v.image.tag | default $root.Chart.AppVersion) }}{{ with index ($v.image.digests | default dict) .component }}@{{ . }}{{ end }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          args:
            - --grpc-addr=:{{ $c.grpcPort }}
            - --metrics-addr=:{{ $c.metricsPort }}
            - --log-format={{ $v.logFormat }}
            - --log-level={{ $v.logLevel }}
            {{- range include "flotilla.serverArgs" . | fromJsonArray }}
            - {{ . | quote }}
            {{- end }}
            {{- range .args }}
            - {{ . | quote }}
            {{- end }}
            {{- range $c.extraArgs }}
            - {{ . | quote }}
            {{- end }}
          {{- with $env }}
          env:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          ports:
            - name: grpc
              containerPort: {{ $c.grpcPort }}
              protocol: TCP
            - name: metrics
              containerPort: {{ $c.metricsPort }}
              protocol: TCP
          startupProbe:
            httpGet: {path: /healthz, port: metrics}
            periodSeconds: 5
            timeoutSeconds: 3
            failureThreshold: 60
          readinessProbe:
            httpGet: {path: /healthz, port: metrics}
            periodSeconds: 5
            timeoutSeconds: 3
            failureThreshold: 2
          livenessProbe:
            httpGet: {path: /healthz, port: metrics}
            periodSeconds: 20
            timeoutSeconds: 5
            failureThreshold: 3
          resources:
            {{- toYaml $c.resources | nindent 12 }}
          securityContext:
            {{- toYaml $v.securityContext | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- if $tls }}
            - name: tls
              mountPath: {{ include "flotilla.tlsDir" . }}
              readOnly: true
            {{- end }}
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
        {{- if $tls }}
        # The whole Secret, not subPath files: the kubelet swaps a renewed
        # certificate in place and the service reloads it. Mode 0440 (288):
        # readable by the pod's fsGroup only.
        - name: tls
          secret:
            secretName: {{ include "flotilla.tlsSecret" . }}
            defaultMode: 288
        {{- end }}
{{- end -}}

{{/*
The headless Service of one service: clients resolve every ready replica
(gRPC keeps one long-lived connection, so a ClusterIP would pin a client to
one pod for good).
*/}}
{{- define "flotilla.service" -}}
{{- $c := index .root.Values .component -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "flotilla.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "flotilla.labels" . | nindent 4 }}
spec:
  clusterIP: None
  selector:
    {{- include "flotilla.selectorLabels" . | nindent 4 }}
  ports:
    - name: grpc
      port: {{ $c.grpcPort }}
      targetPort: grpc
      protocol: TCP
      appProtocol: grpc
    - name: metrics
      port: {{ $c.metricsPort }}
      targetPort: metrics
      protocol: TCP
      appProtocol: http
{{- end -}}

{{/*
The ServiceAccount of one service, with its IRSA role when it has one.
*/}}
{{- define "flotilla.serviceAccount" -}}
{{- $c := index .root.Values .component -}}
{{- $sa := $c.serviceAccount | default dict -}}
{{- $ann := $sa.annotations | default dict -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "flotilla.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "flotilla.labels" . | nindent 4 }}
  {{- if or $sa.roleARN $ann }}
  annotations:
    {{- with $sa.roleARN }}
    eks.amazonaws.com/role-arn: {{ . | quote }}
    {{- end }}
    {{- with $ann }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
automountServiceAccountToken: {{ include "flotilla.kubeAPI" . }}
{{- end -}}

{{/*
"true" for the services that talk to the Kubernetes API (and so get a
service account token): the watcher, and the launcher, which reads
EC2NodeClasses by name.
*/}}
{{- define "flotilla.kubeAPI" -}}
{{- has .component (list "watcher" "launcher") -}}
{{- end -}}

{{/*
The PodDisruptionBudget of one replicated service.
*/}}
{{- define "flotilla.pdb" -}}
{{- $c := index .root.Values .component -}}
{{- if and $c.podDisruptionBudget (gt (int $c.replicas) 1) }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "flotilla.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "flotilla.labels" . | nindent 4 }}
spec:
  minAvailable: {{ $c.podDisruptionBudget.minAvailable }}
  selector:
    matchLabels:
      {{- include "flotilla.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end -}}

{{/*
Environment of the services that call AWS: the STS endpoint override.
*/}}
{{- define "flotilla.awsEnv" -}}
{{- $env := list -}}
{{- with .Values.aws.endpoints.sts -}}
{{- $env = append $env (dict "name" "AWS_ENDPOINT_URL_STS" "value" .) -}}
{{- $env = append $env (dict "name" "AWS_STS_REGIONAL_ENDPOINTS" "value" "regional") -}}
{{- end -}}
{{- toJson $env -}}
{{- end -}}

{{/*
The services this release runs.
*/}}
{{- define "flotilla.components" -}}
{{- $c := list "solver" "launcher" "watcher" -}}
{{- if .Values.interruption.enabled }}{{ $c = append $c "interruption" }}{{ end -}}
{{- toJson $c -}}
{{- end -}}

{{/*
The names no extra client identity may take: a certificate with one of
them would be that service (the watcher's may launch, the interruption
service's may disrupt).
*/}}
{{- define "flotilla.serviceIdentities" -}}
{{- toJson (list "solver" "launcher" "watcher" "interruption") -}}
{{- end -}}

{{/*
The SPIFFE identity of a name: spiffe://<trustDomain>/<name>.
Call with (dict "root" $ "name" "solver").
*/}}
{{- define "flotilla.spiffeID" -}}
{{- $td := .root.Values.tls.trustDomain -}}
{{- if not (regexMatch "^[a-z0-9._-]+$" ($td | toString)) -}}
{{- fail (printf "tls.trustDomain %q: want lower-case letters, digits, '.', '-' and '_' (a SPIFFE trust domain)" ($td | toString)) -}}
{{- end -}}
{{- printf "spiffe://%s/%s" $td .name -}}
{{- end -}}

{{/*
"true" when cert-manager issues the certificates: tls.certManager.enabled
true, or auto (the default) and the API server serves cert-manager.io/v1.
*/}}
{{- define "flotilla.certManager" -}}
{{- $e := .Values.tls.certManager.enabled -}}
{{- if kindIs "bool" $e -}}
{{- $e -}}
{{- else if or (kindIs "invalid" $e) (eq (toString $e) "auto") -}}
{{- .Capabilities.APIVersions.Has "cert-manager.io/v1" -}}
{{- else -}}
{{- fail (printf "tls.certManager.enabled %q: want auto, true or false" (toString $e)) -}}
{{- end -}}
{{- end -}}

{{/*
The Secret (tls.crt, tls.key, ca.crt) of one service: tls.existingSecrets.<component>,
else the one its cert-manager Certificate writes; rendering fails when
there is neither. Call with (dict "root" $ "component" "solver").
*/}}
{{- define "flotilla.tlsSecret" -}}
{{- $tls := .root.Values.tls -}}
{{- $existing := index ($tls.existingSecrets | default dict) .component | default "" -}}
{{- if $existing -}}
{{- $existing -}}
{{- else if eq (include "flotilla.certManager" .root) "true" -}}
{{- printf "%s-tls" (include "flotilla.componentName" .) -}}
{{- else -}}
{{- fail (printf "tls: the %[1]s service has no certificate. cert-manager.io/v1 is not served by the cluster (or tls.certManager.enabled=false) and tls.existingSecrets.%[1]s is empty. Install cert-manager (or set tls.certManager.enabled=true, e.g. for helm template), or give a Secret with tls.crt, tls.key and ca.crt in tls.existingSecrets.%[1]s. Plaintext without authentication (tls.insecure=true) is for tests only." .component) -}}
{{- end -}}
{{- end -}}

{{/*
Where every service finds its certificate, key and CA bundle.
*/}}
{{- define "flotilla.tlsDir" -}}/etc/flotilla/tls{{- end -}}

{{/*
The flags every service shares for mutual TLS, authorization and
overload: a JSON list. Call with (dict "root" $ "component" "solver").
*/}}
{{- define "flotilla.serverArgs" -}}
{{- $v := .root.Values -}}
{{- $c := index $v .component -}}
{{- $dir := include "flotilla.tlsDir" . -}}
{{- $args := list -}}
{{- if $v.tls.insecure -}}
{{- $args = append $args "--insecure" -}}
{{- else -}}
{{- $_ := include "flotilla.tlsSecret" . -}}
{{- $args = concat $args (list
  (printf "--tls-cert=%s/tls.crt" $dir)
  (printf "--tls-key=%s/tls.key" $dir)
  (printf "--tls-ca=%s/ca.crt" $dir)) -}}
{{- end -}}
{{- $_ := include "flotilla.spiffeID" (dict "root" .root "name" .component) -}}
{{- $args = append $args (printf "--trust-domain=%s" $v.tls.trustDomain) -}}
{{- $args = append $args (printf "--max-in-flight=%d" (int64 $c.maxInFlight)) -}}
{{- $args = append $args (printf "--max-message-bytes=%d" (int64 $c.maxMessageBytes)) -}}
{{- if $v.reflection }}{{ $args = append $args "--reflection" }}{{ end -}}
{{- toJson $args -}}
{{- end -}}

{{/*
GOMEMLIMIT of one service: goMemLimitPercent of its memory limit, in MiB,
or nothing without a limit, with goMemLimitPercent 0, or when extraEnv
sets GOMEMLIMIT itself. Call with (dict "root" $ "component" "solver").
*/}}
{{- define "flotilla.goMemLimit" -}}
{{- $v := .root.Values -}}
{{- $c := index $v .component -}}
{{- $limit := dig "limits" "memory" "" ($c.resources | default dict) -}}
{{- $own := false -}}
{{- range $c.extraEnv }}{{ if eq .name "GOMEMLIMIT" }}{{ $own = true }}{{ end }}{{ end -}}
{{- if and $limit (gt (float64 $v.goMemLimitPercent) 0.0) (not $own) -}}
{{- $bytes := 0.0 -}}
{{- if or (kindIs "float64" $limit) (kindIs "int" $limit) (kindIs "int64" $limit) -}}
{{- $bytes = float64 $limit -}}
{{- else -}}
{{- $q := toString $limit -}}
{{- $num := regexFind "^[0-9]+(\\.[0-9]+)?" $q -}}
{{- $units := dict "" 1.0 "k" 1000.0 "M" 1000000.0 "G" 1000000000.0 "T" 1000000000000.0 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "e6" 1000000.0 "e9" 1000000000.0 "E6" 1000000.0 "E9" 1000000000.0 -}}
{{- $unit := trimPrefix $num $q -}}
{{- if or (not $num) (not (hasKey $units $unit)) -}}
{{- fail (printf "%s.resources.limits.memory %q: cannot derive GOMEMLIMIT (want a number with an optional k, M, G, T, Ki, Mi, Gi, Ti, e6 or e9 suffix); set GOMEMLIMIT in %s.extraEnv or goMemLimitPercent=0" .component $q .component) -}}
{{- end -}}
{{- $bytes = mulf (float64 $num) (get $units $unit) -}}
{{- end -}}
{{- printf "%dMiB" (int64 (floor (divf (mulf $bytes (float64 $v.goMemLimitPercent)) 104857600.0))) -}}
{{- end -}}
{{- end -}}
