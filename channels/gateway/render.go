package gateway

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
	"time"

	mfa "github.com/mfad/mfad"
)

//go:embed templates
var templateFiles embed.FS

// withCode are the templates that exist to carry a code: one without it is useless.
var withCode = map[string]bool{mfa.TemplateChannelCode: true, mfa.TemplateSignInCode: true}

// Languages with templates; anything else is written in English, as the API does.
var languages = []string{mfa.LangEnglish, mfa.LangSpanish}

// Message is a notification rendered for one channel: an SMS uses Text only.
type Message struct {
	Channel  string
	To       string
	Subject  string // e-mail
	Text     string // the SMS, or the plain-text e-mail
	HTML     string // e-mail
	Template string
	Lang     string
	// ID is the same on every delivery of the message (its Nats-Msg-Id, else its stream
	// sequence), so the e-mail's Message-ID lets a mailbox drop a copy sent twice.
	ID string
	// Code is the one-time code, if any, for --dev only: the real senders have it in
	// Text and HTML, and nothing else may log it.
	Code string
}

// errUnknownTemplate is a permanent failure: no retry will make the template exist.
var errUnknownTemplate = errors.New("unknown template")

// renderer holds the parsed templates of every language.
type renderer struct {
	app  string
	text map[string]*texttemplate.Template
	html map[string]*htmltemplate.Template
}

// newRenderer parses the embedded templates; app names the service in the messages.
func newRenderer(app string) (*renderer, error) {
	r := &renderer{app: app, text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}}
	for _, lang := range languages {
		t, err := texttemplate.New(lang).Option("missingkey=error").ParseFS(templateFiles, "templates/"+lang+".txt")
		if err != nil {
			return nil, fmt.Errorf("parse %s text templates: %w", lang, err)
		}
		h, err := htmltemplate.New(lang).Option("missingkey=error").ParseFS(templateFiles, "templates/layout.html", "templates/"+lang+".html")
		if err != nil {
			return nil, fmt.Errorf("parse %s HTML templates: %w", lang, err)
		}
		for _, name := range mfa.NotificationTemplates {
			for _, part := range []string{".subject", ".sms", ".text"} {
				if t.Lookup(name+part) == nil {
					return nil, fmt.Errorf("templates/%s.txt defines no %s%s", lang, name, part)
				}
			}
			if h.Lookup(name+".html") == nil {
				return nil, fmt.Errorf("templates/%s.html defines no %s.html", lang, name)
			}
		}
		r.text[lang], r.html[lang] = t, h
	}
	return r, nil
}

// view is what the templates see.
type view struct {
	App, Lang, Subject string
	Template, Changed  string
	Code               string
	ExpiresIn          string // "5 minutes", in the message's language
	Until              string // end of a lock, "14:05 UTC"
	What               string // the sentence "changed" makes of Template and Changed
}

// render writes n for channel in n's language (English when it has none of its own),
// as of now.
func (r *renderer) render(channel string, n Notification, now time.Time) (Message, error) {
	known := false
	for _, name := range mfa.NotificationTemplates {
		known = known || name == n.Template
	}
	if !known {
		return Message{}, fmt.Errorf("%w %q", errUnknownTemplate, n.Template)
	}
	if withCode[n.Template] && n.Code == "" {
		return Message{}, fmt.Errorf("template %s needs a code and the notification has none", n.Template)
	}
	lang := mfa.LangEnglish
	if _, ok := r.text[n.Lang]; ok {
		lang = n.Lang
	}
	text := r.text[lang]
	v := view{App: r.app, Lang: lang, Template: n.Template, Changed: n.Changed, Code: n.Code}
	if exp, ok := expiresAt(n); ok {
		// Whole minutes, rounded up: "expires in 5 minutes" for a fresh code, and never
		// "0 minutes" for one sent in its last seconds.
		left := max(int((exp.Sub(now)+time.Minute-1)/time.Minute), 1)
		var err error
		if v.ExpiresIn, err = execText(text, "minutes", left); err != nil {
			return Message{}, err
		}
		if n.Template == mfa.TemplateLocked {
			v.Until = exp.UTC().Format("15:04 UTC")
		}
	}
	var err error
	if v.What, err = execText(text, "changed", v); err != nil {
		return Message{}, err
	}
	m := Message{Channel: channel, To: n.To, Template: n.Template, Lang: lang, Code: n.Code}
	if channel == ChannelSMS {
		m.Text, err = execText(text, n.Template+".sms", v)
		return m, err
	}
	if m.Subject, err = execText(text, n.Template+".subject", v); err != nil {
		return Message{}, err
	}
	// A header is one line, whatever a translator typed.
	m.Subject = strings.Join(strings.Fields(m.Subject), " ")
	v.Subject = m.Subject
	if m.Text, err = execText(text, n.Template+".text", v); err != nil {
		return Message{}, err
	}
	var b bytes.Buffer
	if err := r.html[lang].ExecuteTemplate(&b, n.Template+".html", v); err != nil {
		return Message{}, fmt.Errorf("render %s.html (%s): %w", n.Template, lang, err)
	}
	m.HTML = b.String()
	return m, nil
}

func execText(t *texttemplate.Template, name string, data any) (string, error) {
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, name, data); err != nil {
		return "", fmt.Errorf("render %s (%s): %w", name, t.Name(), err)
	}
	return strings.TrimSpace(b.String()), nil
}
