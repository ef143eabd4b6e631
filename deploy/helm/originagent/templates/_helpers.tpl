{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "originagent.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's objects. */}}
{{- define "originagent.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "originagent.selectorLabels" -}}
app.kubernetes.io/name: {{ include "originagent.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "originagent.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "originagent.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "originagent.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "originagent.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Capabilities the container adds; values.yaml says why each. */}}
{{- define "originagent.capabilities" -}}
{{- $caps := list "SYS_ADMIN" "SYS_PTRACE" "DAC_READ_SEARCH" }}
{{- if not .Values.capabilities.sysAdmin }}
{{- $caps = list "BPF" "PERFMON" "SYS_PTRACE" "DAC_READ_SEARCH" "CHECKPOINT_RESTORE" }}
{{- end }}
{{- if .Values.capabilities.sysResource }}
{{- $caps = append $caps "SYS_RESOURCE" }}
{{- end }}
{{- toJson (concat $caps .Values.capabilities.extra | uniq) }}
{{- end }}
