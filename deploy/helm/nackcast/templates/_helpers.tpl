{{/* Names. */}}
{{- define "nackcast.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "nackcast.fullname" -}}
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

{{- define "nackcast.primary" -}}{{ include "nackcast.fullname" . }}-primary{{- end }}
{{- define "nackcast.backup" -}}{{ include "nackcast.fullname" . }}-backup{{- end }}
{{- define "nackcast.receiver" -}}{{ include "nackcast.fullname" . }}-receiver{{- end }}

{{/* Labels: common ones, and the selector of a component (primary, backup, receiver). */}}
{{- define "nackcast.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/part-of: nackcast
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{- define "nackcast.selectorLabels" -}}
{{ include "nackcast.nameLabel" . }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end }}

{{- define "nackcast.nameLabel" -}}
app.kubernetes.io/name: {{ printf "%s-%s" (include "nackcast.name" .root) .component }}
{{- end }}

{{- define "nackcast.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* The checks of values that a schema cannot express; included by every workload. */}}
{{- define "nackcast.validate" -}}
{{- if and (not .Values.tls.enabled) (not .Values.tls.allowPlaintext) }}
{{- fail "tls.enabled=false runs gRPC, publish and delete included, without authentication: set tls.allowPlaintext=true too if that is really wanted" }}
{{- end }}
{{- if and .Values.tls.enabled (eq .Values.tls.source "secrets") }}
{{- if or (not .Values.tls.secrets.primary) (and .Values.backup.enabled (not .Values.tls.secrets.backup)) }}
{{- fail "tls.source=secrets needs tls.secrets.primary and (with the backup) tls.secrets.backup" }}
{{- end }}
{{- if not .Values.tls.secrets.receivers }}
{{- fail "tls.source=secrets needs tls.secrets.receivers: node name -> Secret of that node's receiver (its certificate's CN is the node name)" }}
{{- end }}
{{- range $node, $secret := .Values.tls.secrets.receivers }}
{{- if gt (len $node) 63 }}
{{- fail (printf "tls.secrets.receivers: node name %q is longer than 63 characters (it is a label value)" $node) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and .Values.monitoring.serviceMonitor.enabled .Values.monitoring.podMonitor.enabled }}
{{- fail "monitoring: enable the serviceMonitor or the podMonitor, not both (every target would be scraped twice)" }}
{{- end }}
{{- end }}

{{/* "true" when /metrics is served through kube-rbac-proxy. */}}
{{- define "nackcast.metricsProxy" -}}
{{- $e := toString .Values.metrics.authProxy.enabled }}
{{- if or (eq $e "true") (and (eq $e "auto") (eq .Values.network.mode "hostNetwork")) }}true{{ end }}
{{- end }}

{{- define "nackcast.interface" -}}
{{- if .Values.multicast.interface }}{{ .Values.multicast.interface }}
{{- else if eq .Values.network.mode "multus" }}{{ .Values.network.multus.interface }}
{{- else }}eth0{{ end }}
{{- end }}

{{- define "nackcast.multusName" -}}
{{- .Values.network.multus.name | default (printf "%s-mcast" (include "nackcast.fullname" .)) }}
{{- end }}

{{- define "nackcast.issuerName" -}}
{{- .Values.tls.certManager.issuerRef.name | default (printf "%s-ca" (include "nackcast.fullname" .)) }}
{{- end }}

{{- define "nackcast.packetKeysSecret" -}}
{{- .Values.packetKeys.secretName | default (printf "%s-packet-keys" (include "nackcast.fullname" .)) }}
{{- end }}

{{- define "nackcast.metricsReaderRole" -}}
{{ printf "%s-%s-metrics-reader" .Release.Namespace (include "nackcast.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The pod template's metadata and the spec fields every nackcast pod has.
Arguments: root, component, metricsPort, extraLabels (optional).
*/}}
{{- define "nackcast.podMetadata" -}}
metadata:
  labels:
    {{- include "nackcast.selectorLabels" . | nindent 4 }}
    app.kubernetes.io/component: {{ ternary "receiver" "sender" (eq .component "receiver") }}
    {{- with get . "extraLabels" }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- $annotations := dict }}
  {{- if eq .root.Values.network.mode "multus" }}
  {{- $_ := set $annotations "k8s.v1.cni.cncf.io/networks" (include "nackcast.multusName" .root) }}
  {{- end }}
  {{- if and .root.Values.metrics.podAnnotations (not (include "nackcast.metricsProxy" .root)) }}
  {{- $_ := set $annotations "prometheus.io/scrape" "true" }}
  {{- $_ := set $annotations "prometheus.io/port" (toString .metricsPort) }}
  {{- $_ := set $annotations "prometheus.io/path" "/metrics" }}
  {{- end }}
  {{- $_ := set $annotations "checksum/config" (include (print .root.Template.BasePath "/configmap.yaml") .root | sha256sum) }}
  annotations:
    {{- toYaml $annotations | nindent 4 }}
{{- end }}

{{- define "nackcast.podSpecCommon" -}}
serviceAccountName: {{ include "nackcast.fullname" .root }}
# nackcast needs no Kubernetes token; kube-rbac-proxy mounts its own.
automountServiceAccountToken: false
{{- if eq .root.Values.network.mode "hostNetwork" }}
hostNetwork: true
dnsPolicy: ClusterFirstWithHostNet
{{- end }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  runAsNonRoot: true
  runAsUser: 65532
  runAsGroup: 65532
  fsGroup: 65532
  seccompProfile:
    type: RuntimeDefault
{{- end }}

{{- define "nackcast.containerSecurityContext" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities:
    drop: [ALL]
{{- end }}

{{/*
A nackcast container's env beyond its ConfigMap. Arguments: root, id
(a literal receiver id; empty: the pod's name), metricsPort, env (the
component's extra NACKCAST_* variables).
*/}}
{{- define "nackcast.env" -}}
- name: NACKCAST_ID
{{- with get . "id" }}
  value: {{ . | quote }}
{{- else }}
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- end }}
{{- if include "nackcast.metricsProxy" .root }}
- name: NACKCAST_METRICS_ADDR
  value: 127.0.0.1:{{ .metricsPort }}
{{- end }}
{{- if .root.Values.packetKeys.enabled }}
- name: NACKCAST_PACKET_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ include "nackcast.packetKeysSecret" .root }}
      key: {{ .root.Values.packetKeys.key }}
{{- end }}
{{- range $k, $v := .env }}
- name: {{ $k }}
  value: {{ toString $v | quote }}
{{- end }}
{{- end }}

{{/* The probes of a service: gRPC probes in plaintext, the binary's -healthcheck under TLS. Arguments: root, service, grpcPort, initialDelay. */}}
{{- define "nackcast.probes" -}}
{{- range $what := list "readinessProbe" "livenessProbe" }}
{{ $what }}:
  {{- if $.root.Values.tls.enabled }}
  exec:
    command: ["/nackcast/{{ $.service }}", "-healthcheck"]
  timeoutSeconds: 5
  {{- else }}
  grpc:
    port: {{ $.grpcPort }}
  {{- end }}
  {{- if eq $what "readinessProbe" }}
  periodSeconds: 5
  {{- else }}
  initialDelaySeconds: {{ $.initialDelay }}
  periodSeconds: 10
  failureThreshold: 6
  {{- end }}
{{- end }}
{{- end }}

{{/* The container ports of a nackcast container. Arguments: root, grpcPort, metricsPort. */}}
{{- define "nackcast.ports" -}}
ports:
  - name: grpc
    containerPort: {{ .grpcPort }}
  {{- if not (include "nackcast.metricsProxy" .root) }}
  - name: metrics
    containerPort: {{ .metricsPort }}
  {{- end }}
{{- end }}

{{/* The kube-rbac-proxy sidecar serving /metrics of 127.0.0.1:metricsPort on the pod's address. Arguments: root, metricsPort. */}}
{{- define "nackcast.metricsProxyContainer" -}}
{{- if include "nackcast.metricsProxy" .root }}
- name: kube-rbac-proxy
  image: {{ .root.Values.metrics.authProxy.image }}
  args:
    - --secure-listen-address=[$(POD_IP)]:{{ .metricsPort }}
    - --upstream=http://127.0.0.1:{{ .metricsPort }}/
    - --allow-paths=/metrics
  env:
    - name: POD_IP
      valueFrom:
        fieldRef:
          fieldPath: status.podIP
  volumeMounts:
    - name: kube-api-access
      mountPath: /var/run/secrets/kubernetes.io/serviceaccount
      readOnly: true
  ports:
    - name: metrics
      containerPort: {{ .metricsPort }}
  resources:
    {{- toYaml .root.Values.metrics.authProxy.resources | nindent 4 }}
  securityContext:
    runAsNonRoot: true
    allowPrivilegeEscalation: false
    readOnlyRootFilesystem: true
    capabilities:
      drop: [ALL]
{{- end }}
{{- end }}

{{/*
The TLS volume of a pod. Arguments: root, role (sender, backup,
receiver), name (the certificate's CN; "${POD_NAME}" for a receiver),
dnsNames (list), secret (with tls.source=secrets).
*/}}
{{- define "nackcast.tlsVolume" -}}
{{- if .root.Values.tls.enabled }}
- name: tls
  {{- if eq .root.Values.tls.source "secrets" }}
  secret:
    secretName: {{ .secret }}
    defaultMode: 0440
  {{- else }}
  {{- $cm := .root.Values.tls.certManager }}
  csi:
    driver: csi.cert-manager.io
    readOnly: true
    volumeAttributes:
      csi.cert-manager.io/issuer-name: {{ include "nackcast.issuerName" .root }}
      csi.cert-manager.io/issuer-kind: {{ $cm.issuerRef.kind }}
      csi.cert-manager.io/issuer-group: {{ $cm.issuerRef.group }}
      csi.cert-manager.io/common-name: {{ .name | quote }}
      csi.cert-manager.io/organizationalunits: {{ .role }}
      csi.cert-manager.io/uri-sans: urn:nackcast:role:{{ .role }}
      csi.cert-manager.io/dns-names: {{ join "," .dnsNames | quote }}
      csi.cert-manager.io/ip-sans: 127.0.0.1
      csi.cert-manager.io/key-usages: digital signature,key encipherment,server auth,client auth
      csi.cert-manager.io/duration: {{ $cm.duration }}
      csi.cert-manager.io/renew-before: {{ $cm.renewBefore }}
      csi.cert-manager.io/fs-group: "65532"
  {{- end }}
{{- end }}
{{- end }}

{{- define "nackcast.tlsMount" -}}
{{- if .Values.tls.enabled }}
- name: tls
  mountPath: /certs
  readOnly: true
{{- end }}
{{- end }}

{{/* The DNS names of a sender's certificate: its Service's names. */}}
{{- define "nackcast.serviceDNSNames" -}}
{{- $ns := .root.Release.Namespace }}
{{- list .service (printf "%s.%s" .service $ns) (printf "%s.%s.svc" .service $ns) | toJson }}
{{- end }}

{{/* The ConfigMap entries of gRPC transport security. */}}
{{- define "nackcast.transportConfig" -}}
{{- if .Values.tls.enabled }}
NACKCAST_PLAINTEXT: "false"
NACKCAST_TLS_CA: /certs/ca.crt
NACKCAST_TLS_CERT: /certs/tls.crt
NACKCAST_TLS_KEY: /certs/tls.key
{{- else }}
# Plaintext gRPC (tls.allowPlaintext): anyone who reaches a port may publish and delete.
NACKCAST_PLAINTEXT: "true"
{{- end }}
{{- end }}

{{/* How Prometheus scrapes: through kube-rbac-proxy, or plain HTTP. */}}
{{- define "nackcast.scrapeAuth" -}}
{{- if include "nackcast.metricsProxy" . }}
# Through kube-rbac-proxy: HTTPS (its own self-signed certificate) and the
# scraper service account's token, which may only get /metrics.
scheme: https
tlsConfig:
  insecureSkipVerify: true
authorization:
  type: Bearer
  credentials:
    name: {{ include "nackcast.fullname" . }}-scraper-token
    key: token
{{- else }}
scheme: http
{{- end }}
{{- end }}

{{/* The service account's token for kube-rbac-proxy alone: what the kubelet would mount in every container. */}}
{{- define "nackcast.proxyVolume" -}}
{{- if include "nackcast.metricsProxy" . }}
- name: kube-api-access
  projected:
    sources:
      - serviceAccountToken:
          path: token
          expirationSeconds: 3607
      - configMap:
          name: kube-root-ca.crt
          items:
            - key: ca.crt
              path: ca.crt
      - downwardAPI:
          items:
            - path: namespace
              fieldRef:
                fieldPath: metadata.namespace
{{- end }}
{{- end }}
