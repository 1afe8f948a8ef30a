{{/* The chart's name, at most 63 characters (a DNS label). */}}
{{- define "ccmon-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The objects' base name: the release name, or release-chart when the release name does not
contain the chart's. At most 40 characters, so that NAME-headless and NAME-<replica> fit in 63.
*/}}
{{- define "ccmon-gateway.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ccmon-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ccmon-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ccmon-gateway.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "ccmon-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "ccmon-gateway.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The Secret holding the admin token, or "" when the admin API is off. */}}
{{- define "ccmon-gateway.adminSecretName" -}}
{{- if .Values.adminToken.existingSecret }}
{{- .Values.adminToken.existingSecret }}
{{- else if .Values.adminToken.create }}
{{- printf "%s-admin" (include "ccmon-gateway.fullname" .) }}
{{- end }}
{{- end }}

{{/* The in-cluster URL of the gateway (its Service). */}}
{{- define "ccmon-gateway.url" -}}
{{- printf "http://%s.%s.svc:%d" (include "ccmon-gateway.fullname" .) .Release.Namespace (int .Values.service.port) }}
{{- end }}
