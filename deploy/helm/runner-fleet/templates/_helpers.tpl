{{/* Names and labels shared by the chart's templates. */}}

{{- define "runner-fleet.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "runner-fleet.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "runner-fleet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "runner-fleet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "runner-fleet.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "runner-fleet.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "runner-fleet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "runner-fleet.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* "true" when leader election is on. */}}
{{- define "runner-fleet.leaderElection" -}}
{{- $le := .Values.leaderElection.enabled }}
{{- if eq (toString $le) "auto" }}
{{- if gt (int .Values.replicaCount) 1 }}true{{ end }}
{{- else if $le }}true{{ end }}
{{- end }}

{{- define "runner-fleet.fleetName" -}}
{{- .Values.config.name | default "runner-fleet" }}
{{- end }}

{{- define "runner-fleet.leaseName" -}}
{{- .Values.leaderElection.leaseName | default (printf "%s-leader" (include "runner-fleet.fleetName" .)) }}
{{- end }}

{{/* The fleet.yaml the controller reads: `config` with the server and store settings the pod needs. */}}
{{- define "runner-fleet.config" -}}
{{- $config := deepCopy .Values.config }}
{{- $server := get $config "server" | default dict }}
{{- $_ := set $server "host" ($server.host | default "0.0.0.0") }}
{{- $_ := set $server "port" ($server.port | default .Values.containerPort) }}
{{- /* The main port faces the webhook's senders: the dashboard and API either have a loopback listener of their
       own, or require the token from dashboard.tokenSecret. A config that already chose keeps its choice. */}}
{{- if not (or $server.dashboard $server.dashboardToken) }}
{{- if .Values.dashboard.tokenSecret.name }}
{{- $_ := set $server "dashboardToken" "${env:RUNNER_FLEET_DASHBOARD_TOKEN}" }}
{{- else }}
{{- $_ := set $server "dashboard" (dict "host" "127.0.0.1" "port" (int .Values.dashboard.port)) }}
{{- end }}
{{- end }}
{{- $_ := set $config "server" $server }}
{{- $store := get $config "store" | default dict }}
{{- $_ := set $store "path" ($store.path | default "/var/lib/runner-fleet/state.db") }}
{{- $_ := set $config "store" $store }}
{{- toYaml $config }}
{{- end }}

{{/*
Namespaces the controller works in, as YAML: name -> {runners, controller, createServiceAccount, kubernetesMode,
leaderElection}. The same derivation as controllerNeeds() in src/providers/kubernetes/rbac-needs.ts.
*/}}
{{- define "runner-fleet.rbacNamespaces" -}}
{{- $out := dict }}
{{- $blank := dict "runners" false "controller" false "createServiceAccount" false "kubernetesMode" false "leaderElection" false }}
{{- if not .Values.existingConfigMap }}
{{- range .Values.config.scaleSets }}
{{- $p := .provider | default dict }}
{{- if eq (toString $p.kind) "kubernetes" }}
{{- $e := get $out $p.namespace | default (deepCopy $blank) }}
{{- $_ := set $e "runners" true }}
{{- $sa := $p.serviceAccount | default dict }}
{{- if not $sa.name }}{{ $_ := set $e "createServiceAccount" true }}{{ end }}
{{- if eq (toString ($p.containerMode | default "none")) "kubernetes" }}{{ $_ := set $e "kubernetesMode" true }}{{ end }}
{{- $_ := set $out $p.namespace $e }}
{{- end }}
{{- end }}
{{- end }}
{{- range .Values.rbac.namespaces }}
{{- $e := get $out .name | default (deepCopy $blank) }}
{{- $_ := set $e "runners" true }}
{{- if .createServiceAccount }}{{ $_ := set $e "createServiceAccount" true }}{{ end }}
{{- if .kubernetesMode }}{{ $_ := set $e "kubernetesMode" true }}{{ end }}
{{- $_ := set $out .name $e }}
{{- end }}
{{- if include "runner-fleet.leaderElection" . }}
{{- $e := get $out .Release.Namespace | default (deepCopy $blank) }}
{{- $_ := set $e "controller" true }}
{{- $_ := set $e "leaderElection" true }}
{{- $_ := set $out .Release.Namespace $e }}
{{- end }}
{{- toYaml $out }}
{{- end }}
