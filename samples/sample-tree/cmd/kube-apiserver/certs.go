package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// servingCert returns the serving certificate in certDir (apiserver.crt and
// apiserver.key), generating a self-signed ECDSA pair there first if either
// is missing, as the real server does when no --tls-cert-file is given.
func servingCert(certDir, advertise string) (tls.Certificate, error) {
	certFile := filepath.Join(certDir, "apiserver.crt")
	keyFile := filepath.Join(certDir, "apiserver.key")
	if fileExists(certFile) && fileExists(keyFile) {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("unable to load serving certificate from %s: %v", certDir, err)
		}
		logf('I', "Using existing serving certificate %s", certFile)
		return cert, nil
	}
	certPEM, keyPEM, err := selfSignedCert(advertise)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("unable to generate self signed cert: %v", err)
	}
	if err := os.MkdirAll(certDir, 0o755); err != nil {
		return tls.Certificate{}, fmt.Errorf("unable to create cert dir: %v", err)
	}
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		return tls.Certificate{}, err
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, err
	}
	logf('I', "Generated self-signed cert (%s, %s)", certFile, keyFile)
	return tls.X509KeyPair(certPEM, keyPEM)
}

func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}

// selfSignedCert makes a P-256 certificate for 127.0.0.1 and localhost (and
// the advertise address, if any). It is its own CA, so clients can trust it
// with --cacert apiserver.crt.
func selfSignedCert(advertise string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	ips := []net.IP{net.ParseIP("127.0.0.1")}
	if ip := net.ParseIP(advertise); ip != nil && !ip.Equal(ips[0]) {
		ips = append(ips, ip)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: fmt.Sprintf("localhost@%d", now.Unix())},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           ips,
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, nil
}
