// Package smtptest runs a real SMTP server for tests: aiosmtpd (Debian's
// python3-aiosmtpd) on a loopback port, storing each message it accepts in a Maildir,
// with STARTTLS, implicit TLS or AUTH PLAIN when asked. Without aiosmtpd the test is
// skipped, except in CI (CI=true), which installs it.
package smtptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	_ "embed"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// authMailbox is the handler that adds AUTH to aiosmtpd's Mailbox; its file is written
// next to the Maildir, since a test binary may run anywhere.
//
//go:embed authmailbox.py
var authMailbox []byte

// User and Password are what a server started with Options.Auth accepts.
const User, Password = "gateway", "s3cret:p@ss"

// Options choose the server's security.
type Options struct {
	StartTLS bool // offer and require STARTTLS
	Implicit bool // TLS from the first byte (SMTPS); aiosmtpd 1.4 offers no AUTH then
	Auth     bool // require AUTH PLAIN as User and Password before MAIL FROM
}

// Server is a running aiosmtpd.
type Server struct {
	Addr    string
	Maildir string
	// Roots trusts the server's certificate (with StartTLS or Implicit).
	Roots *x509.CertPool
	// CAFile is that certificate as a PEM file.
	CAFile string
}

// Command finds aiosmtpd: its script, or a python3 that can import it.
func Command(t testing.TB) []string {
	t.Helper()
	if p, err := exec.LookPath("aiosmtpd"); err == nil {
		return []string{p}
	}
	// pyenv and virtualenvs shadow Debian's python3, which is the one with the package.
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(py, "-c", "import aiosmtpd").Run() == nil {
			return []string{py, "-m", "aiosmtpd"}
		}
	}
	msg := "no SMTP server for the e-mail tests: install Debian's python3-aiosmtpd (apt-get install python3-aiosmtpd)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return nil
}

// Start runs aiosmtpd on a free loopback port until the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	argv := Command(t)
	dir := t.TempDir()
	s := &Server{Addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), Maildir: filepath.Join(dir, "maildir")}
	args := append(argv[1:], "-n", "-l", s.Addr)
	if o.StartTLS || o.Implicit {
		var key string
		s.CAFile, key, s.Roots = certificate(t, dir)
		if o.Implicit {
			args = append(args, "--smtpscert", s.CAFile, "--smtpskey", key)
		} else {
			args = append(args, "--tlscert", s.CAFile, "--tlskey", key)
		}
	}
	cmd := exec.Command(argv[0], args...)
	cmd.Env = os.Environ()
	if o.Auth {
		if err := os.WriteFile(filepath.Join(dir, "authmailbox.py"), authMailbox, 0o600); err != nil {
			t.Fatal(err)
		}
		cmd.Args = append(cmd.Args, "-c", "authmailbox.AuthMailbox", s.Maildir)
		cmd.Env = append(cmd.Env, "PYTHONPATH="+dir, "MFAD_TEST_SMTP_USER="+User, "MFAD_TEST_SMTP_PASSWORD="+Password)
	} else {
		cmd.Args = append(cmd.Args, "-c", "aiosmtpd.handlers.Mailbox", s.Maildir)
	}
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start aiosmtpd: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("aiosmtpd output:\n%s", out.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("aiosmtpd exited: %s", out.String())
		default:
		}
		c, err := net.Dial("tcp", s.Addr)
		if err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("aiosmtpd not listening on %s within 30s: %s", s.Addr, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// URL is the server's URL with scheme smtp or smtps, with User and Password if auth.
func (s *Server) URL(scheme string, auth bool) string {
	if auth {
		return fmt.Sprintf("%s://%s:%s@%s", scheme, User, strings.ReplaceAll(Password, "@", "%40"), s.Addr)
	}
	return fmt.Sprintf("%s://%s", scheme, s.Addr)
}

// Message is one message the server stored.
type Message struct {
	Header mail.Header // with aiosmtpd's X-MailFrom and X-RcptTo: the envelope
	Text   string      // the text/plain part, decoded
	HTML   string      // the text/html part, decoded
	Raw    string
}

// Subject is the decoded Subject header.
func (m Message) Subject() (string, error) {
	return new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
}

// Messages reads the Maildir: every message stored so far.
func (s *Server) Messages(t testing.TB) []Message {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.Maildir, "new"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []Message
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(s.Maildir, "new", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m, err := parse(raw)
		if err != nil {
			t.Fatalf("stored message: %v\n%s", err, raw)
		}
		out = append(out, m)
	}
	return out
}

// Wait waits until the server stored n messages and returns them all.
func (s *Server) Wait(t testing.TB, n int) []Message {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if got := s.Messages(t); len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %d messages at the SMTP server within 30s", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// parse reads a multipart/alternative message of quoted-printable UTF-8 parts, the
// form the gateway writes.
func parse(raw []byte) (Message, error) {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Message{}, err
	}
	out := Message{Header: m.Header, Raw: string(raw)}
	mediaType, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/alternative" {
		return out, fmt.Errorf("Content-Type %q (%v), want multipart/alternative", m.Header.Get("Content-Type"), err)
	}
	parts := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := parts.NextRawPart()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		if p.Header.Get("Content-Transfer-Encoding") != "quoted-printable" {
			return out, fmt.Errorf("part %s is not quoted-printable", p.Header.Get("Content-Type"))
		}
		body, err := io.ReadAll(quotedprintable.NewReader(p))
		if err != nil {
			return out, err
		}
		switch p.Header.Get("Content-Type") {
		case "text/plain; charset=utf-8":
			out.Text = string(body)
		case "text/html; charset=utf-8":
			out.HTML = string(body)
		default:
			return out, fmt.Errorf("unexpected part %s", p.Header.Get("Content-Type"))
		}
	}
}

// certificate writes a self-signed certificate for 127.0.0.1 and localhost and its
// key into dir, and returns a pool that trusts it.
func certificate(t testing.TB, dir string) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mfad test SMTP server"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
