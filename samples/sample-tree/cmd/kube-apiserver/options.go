package main

import (
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
)

// serverOptions are the real kube-apiserver flags this sample understands.
type serverOptions struct {
	etcdServers       string
	securePort        int
	bindAddress       string
	certDir           string
	tokenAuthFile     string
	saIssuer          string
	saKeyFile         string
	saSigningKeyFile  string
	serviceClusterIPs string
	authorizationMode string
	advertiseAddress  string
	allowPrivileged   bool
	verbosity         string
}

func addServerFlags(fs *flag.FlagSet) *serverOptions {
	o := &serverOptions{}
	fs.StringVar(&o.etcdServers, "etcd-servers", "", "List of etcd servers to connect with (scheme://ip:port), comma separated.")
	fs.IntVar(&o.securePort, "secure-port", 6443, "The port on which to serve HTTPS with authentication and authorization.")
	fs.StringVar(&o.bindAddress, "bind-address", "0.0.0.0", "The IP address on which to listen for the --secure-port port.")
	fs.StringVar(&o.certDir, "cert-dir", "/var/run/kubernetes", "The directory where the TLS certs are located (apiserver.crt/apiserver.key are generated there if missing).")
	fs.StringVar(&o.tokenAuthFile, "token-auth-file", "", "If set, the file that will be used to secure the secure port of the API server via token authentication.")
	fs.StringVar(&o.saIssuer, "service-account-issuer", "", "Identifier of the service account token issuer.")
	fs.StringVar(&o.saKeyFile, "service-account-key-file", "", "File containing PEM-encoded x509 RSA or ECDSA keys, used to verify ServiceAccount tokens.")
	fs.StringVar(&o.saSigningKeyFile, "service-account-signing-key-file", "", "Path to the file that contains the current private key of the service account token issuer.")
	fs.StringVar(&o.serviceClusterIPs, "service-cluster-ip-range", "", "A CIDR notation IP range from which to assign service cluster IPs.")
	fs.StringVar(&o.authorizationMode, "authorization-mode", "AlwaysAllow", "Ordered list of plug-ins to do authorization on secure port. Comma-delimited list of: AlwaysAllow,AlwaysDeny,ABAC,Webhook,RBAC,Node.")
	fs.StringVar(&o.advertiseAddress, "advertise-address", "", "The IP address on which to advertise the apiserver to members of the cluster.")
	fs.BoolVar(&o.allowPrivileged, "allow-privileged", false, "If true, allow privileged containers.")
	fs.StringVar(&o.verbosity, "v", "0", "number for the log level verbosity (ignored)")
	return o
}

var authorizationModes = map[string]bool{
	"AlwaysAllow": true, "AlwaysDeny": true, "ABAC": true, "Webhook": true, "RBAC": true, "Node": true,
}

// validate checks the options the way the real server does before it starts
// anything, and returns the etcd URL to probe.
func (o *serverOptions) validate() (etcd *url.URL, errs []error) {
	if o.etcdServers == "" {
		errs = append(errs, errors.New("--etcd-servers must be specified"))
	} else {
		for i, s := range strings.Split(o.etcdServers, ",") {
			u, err := url.Parse(strings.TrimSpace(s))
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				errs = append(errs, fmt.Errorf("--etcd-servers: %q is not a valid http(s) URL", s))
				continue
			}
			if i == 0 {
				etcd = u
			}
		}
	}
	if o.securePort < 1 || o.securePort > 65535 {
		errs = append(errs, fmt.Errorf("--secure-port %d must be between 1 and 65535, inclusive. It cannot be turned off with 0", o.securePort))
	}
	if net.ParseIP(o.bindAddress) == nil {
		errs = append(errs, fmt.Errorf("--bind-address %q is not a valid IP address", o.bindAddress))
	}
	if o.advertiseAddress != "" && net.ParseIP(o.advertiseAddress) == nil {
		errs = append(errs, fmt.Errorf("--advertise-address %q is not a valid IP address", o.advertiseAddress))
	}
	if o.certDir == "" {
		errs = append(errs, errors.New("--cert-dir must not be empty"))
	}
	if o.serviceClusterIPs != "" {
		cidrs := strings.Split(o.serviceClusterIPs, ",")
		if len(cidrs) > 2 {
			errs = append(errs, errors.New("--service-cluster-ip-range takes at most two (dual-stack) CIDRs"))
		}
		for _, c := range cidrs {
			if _, _, err := net.ParseCIDR(strings.TrimSpace(c)); err != nil {
				errs = append(errs, fmt.Errorf("--service-cluster-ip-range: %v", err))
			}
		}
	}
	for _, m := range strings.Split(o.authorizationMode, ",") {
		if !authorizationModes[strings.TrimSpace(m)] {
			errs = append(errs, fmt.Errorf("--authorization-mode: authorization mode %q is not a valid mode", m))
		}
	}
	if strings.Contains(o.saIssuer, ":") {
		if _, err := url.Parse(o.saIssuer); err != nil {
			errs = append(errs, fmt.Errorf("--service-account-issuer %q contained a ':' but was not a valid URL: %v", o.saIssuer, err))
		}
	}
	for _, f := range []struct{ flag, path string }{
		{"--service-account-key-file", o.saKeyFile},
		{"--service-account-signing-key-file", o.saSigningKeyFile},
		{"--token-auth-file", o.tokenAuthFile},
	} {
		if f.path == "" {
			continue
		}
		if st, err := os.Stat(f.path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", f.flag, err))
		} else if st.IsDir() {
			errs = append(errs, fmt.Errorf("%s: %s is a directory", f.flag, f.path))
		}
	}
	return etcd, errs
}

// tokenUser is who a bearer token authenticates as.
type tokenUser struct {
	Name   string
	UID    string
	Groups []string
}

// loadTokenFile reads a static token file like k8s.io/apiserver's tokenfile:
// CSV records `token,user,uid[,"group1,group2"]`.
func loadTokenFile(path string) (map[string]tokenUser, error) {
	tokens := map[string]tokenUser{}
	if path == "" {
		return tokens, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	n := 0
	for {
		record, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("token file %q: %v", path, err)
		}
		if len(record) < 3 {
			return nil, fmt.Errorf("token file %q must have at least 3 columns (token, user name, user uid), found %d", path, len(record))
		}
		n++
		if record[0] == "" {
			logf('W', "empty token has been found in token file %q, record number %d", path, n)
			continue
		}
		if _, dup := tokens[record[0]]; dup {
			logf('W', "duplicate token has been found in token file %q, record number %d", path, n)
		}
		u := tokenUser{Name: record[1], UID: record[2]}
		if len(record) >= 4 && record[3] != "" {
			u.Groups = strings.Split(record[3], ",")
		}
		tokens[record[0]] = u
	}
	return tokens, nil
}
