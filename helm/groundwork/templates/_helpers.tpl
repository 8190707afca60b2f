{{/* Common labels on every object of the release. */}}
{{- define "groundwork.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: groundwork
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: groundwork
{{- end }}

{{/* Selector labels of one component: (dict "root" $ "component" NAME). */}}
{{- define "groundwork.selector" -}}
app.kubernetes.io/name: groundwork
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The mesh description (files/mesh.yaml, copied from envoy/groundwork_envoy). */}}
{{- define "groundwork.mesh" -}}
{{- .Files.Get "files/mesh.yaml" }}
{{- end }}

{{- define "groundwork.otlpHost" -}}
{{- .Values.tracing.otlpHost | default (printf "jaeger.%s.svc.%s" .Release.Namespace .Values.clusterDomain) }}
{{- end }}

{{/* One Envoy config of the generator's Kubernetes profile, for this release:
     (dict "root" $ "file" "sidecar-catalog.yaml"). */}}
{{- define "groundwork.envoyConfig" -}}
{{- $root := .root -}}
{{- $path := printf "files/envoy/%s" .file -}}
{{- $text := $root.Files.Get $path -}}
{{- if not $text }}{{ fail (printf "%s is missing: run `python -m groundwork_envoy chart`" $path) }}{{ end -}}
{{- $text | replace "__OTLP_HOST__" (include "groundwork.otlpHost" $root) | replace "__NAMESPACE__" $root.Release.Namespace | replace "__CLUSTER_DOMAIN__" $root.Values.clusterDomain }}
{{- end }}

{{/* A mesh identity, as the generator's Kubernetes profile names it. */}}
{{- define "groundwork.identity" -}}
{{- printf "%s.%s.serviceaccount.identity.groundwork.local" .name .root.Release.Namespace }}
{{- end }}

{{- define "groundwork.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{- define "groundwork.envoyImage" -}}
{{- printf "%s:%s" .Values.envoy.image.repository .Values.envoy.image.tag }}
{{- end }}

{{/* Values of one service: serviceDefaults overlaid with services.NAME. */}}
{{- define "groundwork.serviceValues" -}}
{{- $own := index .root.Values.services .name | default dict -}}
{{- toYaml (mergeOverwrite (deepCopy .root.Values.serviceDefaults) (deepCopy $own)) }}
{{- end }}

{{/* The restricted Pod Security Standard, pod level. */}}
{{- define "groundwork.podSecurity" -}}
runAsNonRoot: true
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The restricted Pod Security Standard, container level: (dict "uid" N). */}}
{{- define "groundwork.containerSecurity" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .uid }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "groundwork.scheduling" -}}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Where services find Postgres and Redis: the chart's Secret, or yours. */}}
{{- define "groundwork.postgresUrlRef" -}}
{{- if .Values.postgres.enabled -}}
secretKeyRef: {name: groundwork-secrets, key: postgres-url}
{{- else -}}
secretKeyRef: {name: {{ required "postgres.external.existingSecret is required when postgres.enabled is false" .Values.postgres.external.existingSecret }}, key: url}
{{- end }}
{{- end }}

{{- define "groundwork.redisUrlRef" -}}
{{- if .Values.redis.enabled -}}
secretKeyRef: {name: groundwork-secrets, key: redis-url}
{{- else -}}
secretKeyRef: {name: {{ required "redis.external.existingSecret is required when redis.enabled is false" .Values.redis.external.existingSecret }}, key: url}
{{- end }}
{{- end }}

{{/* Envoy as a native sidecar (an init container that keeps running): up before
     the app starts, down after it stops. (dict "root" $ "name" NAME "config" FILE) */}}
{{- define "groundwork.envoyArgs" -}}
- -c
- /etc/envoy/envoy.yaml
- --service-node
- {{ .name }}
- --log-level
- {{ .root.Values.envoy.logLevel }}
- --drain-time-s
- "5"
- --concurrency
- {{ .root.Values.envoy.concurrency | quote }}
# Access log lines reach the log within half a second (Envoy's default: 10 s).
- --file-flush-interval-msec
- "500"
- --disable-hot-restart
{{- end }}

{{/* The services that own a database (a test checks this against the registry). */}}
{{- define "groundwork.databases" -}}
[booking, catalog, identity, payments, ticketing]
{{- end }}

{{/* kopf's peering object: the operator's replicas elect a leader in it. */}}
{{- define "groundwork.peering" -}}
{{- printf "%s-operator" .Release.Name }}
{{- end }}

{{/* Services that run a canary Deployment beside their stable one (a YAML list). */}}
{{- define "groundwork.canaries" -}}
{{- $mesh := include "groundwork.mesh" . | fromYaml -}}
{{- $canaries := list -}}
{{- range $name := keys $mesh.services | sortAlpha }}
{{- $values := include "groundwork.serviceValues" (dict "root" $ "name" $name) | fromYaml }}
{{- if gt (int $values.canary.replicas) 0 }}{{ $canaries = append $canaries $name }}{{ end }}
{{- end }}
{{- toYaml $canaries }}
{{- end }}

{{/* Every Envoy of the mesh, as the generator names them (a YAML list): the edge,
     then sidecar-NAME per service. Its ConfigMap is envoy-edge or envoy-NAME. */}}
{{- define "groundwork.envoys" -}}
{{- $mesh := include "groundwork.mesh" . | fromYaml -}}
{{- $envoys := list "edge" -}}
{{- range $name := keys $mesh.services | sortAlpha }}{{ $envoys = append $envoys (printf "sidecar-%s" $name) }}{{ end -}}
{{- toYaml $envoys }}
{{- end }}
