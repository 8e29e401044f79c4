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
Every service serves gRPC health on its gRPC port (the probes) and
/metrics on its metrics port.
*/}}
{{- define "flotilla.deployment" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $c := index $v .component -}}
{{- $sel := include "flotilla.selectorLabels" . }}
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
      automountServiceAccountToken: {{ has .component (list "watcher" "launcher") }}
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
          image: {{ printf "%s-%s:%s" $v.image.repository .component ($v.image.tag | default $root.Chart.AppVersion) }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          args:
            - --grpc-addr=:{{ $c.grpcPort }}
            - --metrics-addr=:{{ $c.metricsPort }}
            - --log-format={{ $v.logFormat }}
            - --log-level={{ $v.logLevel }}
            {{- range .args }}
            - {{ . | quote }}
            {{- end }}
            {{- range $c.extraArgs }}
            - {{ . | quote }}
            {{- end }}
          {{- $env := concat (.env | default list) ($c.extraEnv | default list) }}
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
            grpc: {port: {{ $c.grpcPort }}}
            periodSeconds: 5
            failureThreshold: 60
          readinessProbe:
            grpc: {port: {{ $c.grpcPort }}}
            periodSeconds: 5
            failureThreshold: 2
          livenessProbe:
            grpc: {port: {{ $c.grpcPort }}}
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
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
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
automountServiceAccountToken: {{ has .component (list "watcher" "launcher") }}
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
