package gateway

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
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

// A real SMTP server for the tests: aiosmtpd (Debian's python3-aiosmtpd), storing each
// message it accepts in a Maildir, optionally with STARTTLS, implicit TLS or AUTH.

// aiosmtpdCommand finds aiosmtpd: its script, or a python3 that can import it. Without
// it the test is skipped, except in CI (CI=true), which installs it.
func aiosmtpdCommand(t *testing.T) []string {
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

type smtpServerOpts struct {
	starttls bool // offer and require STARTTLS
	implicit bool // TLS from the first byte (SMTPS)
	auth     bool // require AUTH PLAIN as smtpUser/smtpPassword
}

const smtpUser, smtpPassword = "gateway", "s3cret:p@ss"

type smtpServer struct {
	addr    string
	maildir string
	roots   *x509.CertPool // trusts the server's certificate
}

func startSMTPServer(t *testing.T, o smtpServerOpts) *smtpServer {
	t.Helper()
	argv := aiosmtpdCommand(t)
	s := &smtpServer{addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), maildir: filepath.Join(t.TempDir(), "maildir")}
	args := append(argv[1:], "-n", "-l", s.addr)
	if o.starttls || o.implicit {
		cert, key, roots := testCertificate(t)
		s.roots = roots
		if o.implicit {
			args = append(args, "--smtpscert", cert, "--smtpskey", key)
		} else {
			args = append(args, "--tlscert", cert, "--tlskey", key)
		}
	}
	cmd := exec.Command(argv[0], args...)
	cmd.Env = os.Environ()
	if o.auth {
		wd, _ := os.Getwd()
		cmd.Args = append(cmd.Args, "-c", "smtpauth.AuthMailbox", s.maildir)
		cmd.Env = append(cmd.Env, "PYTHONPATH="+filepath.Join(wd, "testdata"),
			"MFAD_TEST_SMTP_USER="+smtpUser, "MFAD_TEST_SMTP_PASSWORD="+smtpPassword)
	} else {
		cmd.Args = append(cmd.Args, "-c", "aiosmtpd.handlers.Mailbox", s.maildir)
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
	eventually(t, "aiosmtpd listening on "+s.addr, func() bool {
		select {
		case <-exited:
			t.Fatalf("aiosmtpd exited: %s", out.String())
		default:
		}
		c, err := net.Dial("tcp", s.addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return s
}

// url is the server's SMTP URL, with the test credentials when auth is true.
func (s *smtpServer) url(scheme string, auth bool) string {
	if auth {
		return fmt.Sprintf("%s://%s:%s@%s", scheme, smtpUser, strings.ReplaceAll(smtpPassword, "@", "%40"), s.addr)
	}
	return fmt.Sprintf("%s://%s", scheme, s.addr)
}

// received is one message in the Maildir.
type received struct {
	header mail.Header
	text   string // the text/plain part, decoded
	html   string // the text/html part, decoded
	raw    string
}

// messages reads the Maildir.
func (s *smtpServer) messages(t *testing.T) []received {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.maildir, "new"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []received
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(s.maildir, "new", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, parseReceived(t, raw))
	}
	return out
}

// waitMessages waits until the Maildir holds n messages.
func (s *smtpServer) waitMessages(t *testing.T, n int) []received {
	t.Helper()
	var got []received
	eventually(t, fmt.Sprintf("%d messages at the SMTP server", n), func() bool {
		got = s.messages(t)
		return len(got) >= n
	})
	return got
}

func parseReceived(t *testing.T, raw []byte) received {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("stored message does not parse: %v\n%s", err, raw)
	}
	r := received{header: m.Header, raw: string(raw)}
	mediaType, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/alternative" {
		t.Fatalf("Content-Type %q (%v), want multipart/alternative", m.Header.Get("Content-Type"), err)
	}
	parts := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := parts.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if p.Header.Get("Content-Transfer-Encoding") != "quoted-printable" {
			t.Fatalf("part %s is not quoted-printable", p.Header.Get("Content-Type"))
		}
		body, err := io.ReadAll(quotedprintable.NewReader(p))
		if err != nil {
			t.Fatal(err)
		}
		switch p.Header.Get("Content-Type") {
		case "text/plain; charset=utf-8":
			r.text = string(body)
		case "text/html; charset=utf-8":
			r.html = string(body)
		default:
			t.Fatalf("unexpected part %s", p.Header.Get("Content-Type"))
		}
	}
	return r
}

// subject decodes the Subject header.
func (r received) subject(t *testing.T) string {
	t.Helper()
	s, err := new(mime.WordDecoder).DecodeHeader(r.header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testCertificate writes a self-signed certificate for 127.0.0.1 and localhost and its
// key, and returns a pool that trusts it.
func testCertificate(t *testing.T) (certFile, keyFile string, roots *x509.CertPool) {
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
	dir := t.TempDir()
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

func freePort(t *testing.T) int {
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
