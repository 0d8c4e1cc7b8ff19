package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

const maxBodyBytes = 3 << 20 // the real server's limit for a request body

type apiServer struct {
	tokens  map[string]tokenUser
	store   *store
	started time.Time
}

// status is metav1.Status (the fields this sample uses).
type status struct {
	Kind       string         `json:"kind"`
	APIVersion string         `json:"apiVersion"`
	Status     string         `json:"status"`
	Message    string         `json:"message"`
	Reason     string         `json:"reason"`
	Details    *statusDetails `json:"details,omitempty"`
	Code       int            `json:"code"`
}

type statusDetails struct {
	Name string `json:"name,omitempty"`
	Kind string `json:"kind,omitempty"`
}

type objectMeta struct {
	Name              string            `json:"name,omitempty"`
	GenerateName      string            `json:"generateName,omitempty"`
	Namespace         string            `json:"namespace,omitempty"`
	UID               string            `json:"uid,omitempty"`
	ResourceVersion   string            `json:"resourceVersion,omitempty"`
	CreationTimestamp string            `json:"creationTimestamp,omitempty"`
	Labels            map[string]string `json:"labels,omitempty"`
	Annotations       map[string]string `json:"annotations,omitempty"`
}

type configMap struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   objectMeta        `json:"metadata"`
	Immutable  *bool             `json:"immutable,omitempty"`
	Data       map[string]string `json:"data,omitempty"`
	BinaryData map[string][]byte `json:"binaryData,omitempty"`
}

type configMapList struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   map[string]string `json:"metadata"`
	Items      []configMap       `json:"items"`
}

func writeJSON(w http.ResponseWriter, code int, v interface{}) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(body, '\n'))
}

func writeStatus(w http.ResponseWriter, code int, reason, message string, details *statusDetails) {
	writeJSON(w, code, status{Kind: "Status", APIVersion: "v1", Status: "Failure", Message: message,
		Reason: reason, Details: details, Code: code})
}

func writeText(w http.ResponseWriter, code int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	io.WriteString(w, text)
}

// authenticate checks the bearer token against --token-auth-file.
func (s *apiServer) authenticate(r *http.Request) bool {
	auth := strings.TrimSpace(r.Header.Get("Authorization"))
	if len(auth) < 7 || !strings.EqualFold(auth[:7], "bearer ") {
		return false
	}
	token := strings.TrimSpace(auth[7:])
	if token == "" {
		return false
	}
	_, ok := s.tokens[token]
	return ok
}

func (s *apiServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.authenticate(r) {
		writeStatus(w, http.StatusUnauthorized, "Unauthorized", "Unauthorized", nil)
		return
	}
	path := r.URL.Path
	switch path {
	case "/version", "/version/":
		if !allow(w, r, http.MethodGet) {
			return
		}
		raw, err := rawVersion()
		if err != nil {
			writeStatus(w, http.StatusInternalServerError, "InternalError", err.Error(), nil)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.Write(raw)
		return
	case "/healthz", "/livez":
		if allow(w, r, http.MethodGet) {
			s.health(w, r, strings.TrimPrefix(path, "/"), true)
		}
		return
	case "/readyz":
		if allow(w, r, http.MethodGet) {
			s.health(w, r, "readyz", time.Since(s.started) >= readyDelay)
		}
		return
	}
	const prefix = "/api/v1/namespaces/"
	if strings.HasPrefix(path, prefix) {
		parts := strings.Split(strings.TrimSuffix(strings.TrimPrefix(path, prefix), "/"), "/")
		if len(parts) >= 2 && parts[1] == "configmaps" && parts[0] != "" {
			switch len(parts) {
			case 2:
				switch r.Method {
				case http.MethodPost:
					s.createConfigMap(w, r, parts[0])
				case http.MethodGet:
					s.listConfigMaps(w, parts[0])
				default:
					methodNotAllowed(w, http.MethodGet, http.MethodPost)
				}
				return
			case 3:
				if parts[2] != "" && allow(w, r, http.MethodGet) {
					s.getConfigMap(w, parts[0], parts[2])
				}
				if parts[2] != "" {
					return
				}
			}
		}
	}
	writeText(w, http.StatusNotFound, "404 page not found\n")
}

func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m || (m == http.MethodGet && r.Method == http.MethodHead) {
			return true
		}
	}
	methodNotAllowed(w, methods...)
	return false
}

func methodNotAllowed(w http.ResponseWriter, methods ...string) {
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writeStatus(w, http.StatusMethodNotAllowed, "MethodNotAllowed",
		"the server does not allow this method on the requested resource", nil)
}

// health answers /healthz, /livez and /readyz like the real healthz handler.
func (s *apiServer) health(w http.ResponseWriter, r *http.Request, name string, ready bool) {
	_, verbose := r.URL.Query()["verbose"]
	checks := []string{"ping", "log", "etcd", "poststarthook/start-apiextensions-informers",
		"poststarthook/bootstrap-controller"}
	if !ready {
		var b strings.Builder
		for _, c := range checks {
			if c == "poststarthook/bootstrap-controller" {
				b.WriteString("[-]" + c + " failed: reason withheld\n")
			} else {
				b.WriteString("[+]" + c + " ok\n")
			}
		}
		b.WriteString(name + " check failed\n")
		writeText(w, http.StatusInternalServerError, b.String())
		return
	}
	if !verbose {
		writeText(w, http.StatusOK, "ok")
		return
	}
	var b strings.Builder
	for _, c := range checks {
		b.WriteString("[+]" + c + " ok\n")
	}
	b.WriteString(name + " check passed\n")
	writeText(w, http.StatusOK, b.String())
}

// dns1123Label is what namespace and ConfigMap names must look like (the
// real server allows DNS subdomains for ConfigMaps; labels are a subset).
var (
	dns1123Label     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	dns1123Subdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

func (s *apiServer) createConfigMap(w http.ResponseWriter, r *http.Request, ns string) {
	if len(ns) > 63 || !dns1123Label.MatchString(ns) {
		writeStatus(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("invalid namespace %q", ns), nil)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		writeStatus(w, http.StatusBadRequest, "BadRequest", err.Error(), nil)
		return
	}
	if len(body) > maxBodyBytes {
		writeStatus(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "request entity too large", nil)
		return
	}
	var cm configMap
	if err := json.Unmarshal(body, &cm); err != nil {
		writeStatus(w, http.StatusBadRequest, "BadRequest", "the object provided is unrecognized: "+err.Error(), nil)
		return
	}
	if (cm.Kind != "" && cm.Kind != "ConfigMap") || (cm.APIVersion != "" && cm.APIVersion != "v1") {
		writeStatus(w, http.StatusBadRequest, "BadRequest",
			fmt.Sprintf("the API version in the data (%s) / kind (%s) do not match the request (v1, ConfigMap)", cm.APIVersion, cm.Kind), nil)
		return
	}
	if cm.Metadata.Namespace != "" && cm.Metadata.Namespace != ns {
		writeStatus(w, http.StatusBadRequest, "BadRequest",
			"the namespace of the provided object does not match the namespace sent on the request", nil)
		return
	}
	if cm.Metadata.Name == "" && cm.Metadata.GenerateName != "" {
		cm.Metadata.Name = cm.Metadata.GenerateName + randomSuffix()
	}
	name := cm.Metadata.Name
	if name == "" {
		writeStatus(w, http.StatusBadRequest, "BadRequest",
			`ConfigMap "" is invalid: metadata.name: Required value: name or generateName is required`, nil)
		return
	}
	if len(name) > 253 || !dns1123Subdomain.MatchString(name) {
		writeStatus(w, http.StatusBadRequest, "BadRequest",
			fmt.Sprintf("ConfigMap %q is invalid: metadata.name: Invalid value: %q: a DNS-1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'", name, name), nil)
		return
	}
	cm.APIVersion, cm.Kind = "v1", "ConfigMap"
	cm.Metadata.Namespace = ns
	cm.Metadata.UID = newUID()
	cm.Metadata.CreationTimestamp = time.Now().UTC().Format(time.RFC3339)
	stored, ok := s.store.create(cm)
	if !ok {
		writeStatus(w, http.StatusConflict, "AlreadyExists", fmt.Sprintf("configmaps %q already exists", name),
			&statusDetails{Name: name, Kind: "configmaps"})
		return
	}
	writeJSON(w, http.StatusCreated, stored)
}

func (s *apiServer) getConfigMap(w http.ResponseWriter, ns, name string) {
	cm, ok := s.store.get(ns, name)
	if !ok {
		writeStatus(w, http.StatusNotFound, "NotFound", fmt.Sprintf("configmaps %q not found", name),
			&statusDetails{Name: name, Kind: "configmaps"})
		return
	}
	writeJSON(w, http.StatusOK, cm)
}

func (s *apiServer) listConfigMaps(w http.ResponseWriter, ns string) {
	items, rv := s.store.list(ns)
	writeJSON(w, http.StatusOK, configMapList{APIVersion: "v1", Kind: "ConfigMapList",
		Metadata: map[string]string{"resourceVersion": rv}, Items: items})
}

func newUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func randomSuffix() string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789" // the real generator's alphabet
	var b [5]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:])
}

// store is the in-memory stand-in for etcd: ConfigMaps by namespace/name.
type store struct {
	mu  sync.Mutex
	rv  uint64
	cms map[string]configMap
}

func newStore() *store { return &store{rv: 1, cms: map[string]configMap{}} }

func (st *store) create(cm configMap) (configMap, bool) {
	key := cm.Metadata.Namespace + "/" + cm.Metadata.Name
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, exists := st.cms[key]; exists {
		return configMap{}, false
	}
	st.rv++
	cm.Metadata.ResourceVersion = strconv.FormatUint(st.rv, 10)
	st.cms[key] = cm
	return cm, true
}

func (st *store) get(ns, name string) (configMap, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	cm, ok := st.cms[ns+"/"+name]
	return cm, ok
}

func (st *store) list(ns string) ([]configMap, string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	items := []configMap{}
	for _, cm := range st.cms {
		if cm.Metadata.Namespace == ns {
			items = append(items, cm)
		}
	}
	sort.Slice(items, func(i, j int) bool { return items[i].Metadata.Name < items[j].Metadata.Name })
	return items, strconv.FormatUint(st.rv, 10)
}
