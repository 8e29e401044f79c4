// Package localca is a throwaway certificate authority for a cluster that
// lives on one machine: the demo, the local control plane and tests. It
// issues the mutual-TLS certificates Flotilla's services present to each
// other (URI SAN spiffe://<trust-domain>/<name>, usable as server and as
// client certificates) and writes them as files the services' --tls-cert,
// --tls-key and --tls-ca flags read. The CA's key lives only in memory: a
// new run makes a new CA, and certificates from an old one stop working.
package localca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/flotilla-io/flotilla/internal/server"
)

// validity is how long the CA and its certificates are valid: long enough
// for any local run, short enough that a leaked file soon expires.
const validity = 7 * 24 * time.Hour

// CA is an in-memory certificate authority.
type CA struct {
	trustDomain string
	cert        *x509.Certificate
	key         *ecdsa.PrivateKey
	certPEM     []byte
}

// New makes a CA for trustDomain (server.DefaultTrustDomain when empty).
func New(trustDomain string) (*CA, error) {
	if trustDomain == "" {
		trustDomain = server.DefaultTrustDomain
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("localca: key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "flotilla local CA (" + trustDomain + ")"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("localca: self-sign: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("localca: %w", err)
	}
	return &CA{trustDomain: trustDomain, cert: cert, key: key, certPEM: pemBlock("CERTIFICATE", der)}, nil
}

// CertPEM is the CA certificate, PEM-encoded: the bundle peers verify
// against.
func (ca *CA) CertPEM() []byte { return ca.certPEM }

// Issue makes a certificate and key for identity name with the URI SAN
// spiffe://<trust-domain>/<name>, the common name name, and hosts (DNS
// names or IP addresses) as further SANs, for both server and client
// authentication.
func (ca *CA) Issue(name string, hosts ...string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("localca: key: %w", err)
	}
	id := &url.URL{Scheme: "spiffe", Host: ca.trustDomain, Path: "/" + name}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{id},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("localca: sign %s: %w", name, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("localca: key %s: %w", name, err)
	}
	return pemBlock("CERTIFICATE", der), pemBlock("PRIVATE KEY", keyDER), nil
}

// LocalHosts are the SANs of a service reached on loopback.
var LocalHosts = []string{"localhost", "127.0.0.1", "::1"}

// WriteFiles issues a certificate for name (see Issue) and writes it into
// dir as <name>.crt and <name>.key (mode 0600), beside the CA bundle ca.crt,
// returning the three paths as the flags take them.
func (ca *CA) WriteFiles(dir, name string, hosts ...string) (server.TLSFiles, error) {
	certPEM, keyPEM, err := ca.Issue(name, hosts...)
	if err != nil {
		return server.TLSFiles{}, err
	}
	files := server.TLSFiles{
		Cert: filepath.Join(dir, name+".crt"),
		Key:  filepath.Join(dir, name+".key"),
		CA:   filepath.Join(dir, "ca.crt"),
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return server.TLSFiles{}, fmt.Errorf("localca: %w", err)
	}
	for path, data := range map[string][]byte{files.Cert: certPEM, files.Key: keyPEM, files.CA: ca.certPEM} {
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
			continue // the shared CA bundle: rewriting it would make its readers reload
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return server.TLSFiles{}, fmt.Errorf("localca: %w", err)
		}
	}
	return files, nil
}

// Args are the command-line flags that make a service use files.
func Args(files server.TLSFiles) []string {
	return []string{"--tls-cert=" + files.Cert, "--tls-key=" + files.Key, "--tls-ca=" + files.CA}
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(fmt.Sprintf("localca: serial: %v", err)) // crypto/rand does not fail
	}
	return n
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
