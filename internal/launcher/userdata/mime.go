package userdata

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/textproto"
	"strings"
)

// Content types of the parts of a MIME user-data archive, as cloud-init and
// nodeadm read them.
const (
	ContentTypeShellScript = `text/x-shellscript; charset="us-ascii"`
	ContentTypeNodeConfig  = "application/node.eks.aws"
)

// part is one part of a MIME multi-part archive.
type part struct {
	contentType string
	content     string
}

// isMIME reports whether user data is a MIME document: it starts with a
// MIME-Version or Content-Type header, as cloud-init decides.
func isMIME(s string) bool {
	s = strings.TrimSpace(s)
	return strings.HasPrefix(s, "MIME-Version:") || strings.HasPrefix(s, "Content-Type:")
}

// parseMIME reads the parts of a multipart MIME document.
func parseMIME(s string) ([]part, error) {
	msg, err := mail.ReadMessage(strings.NewReader(strings.TrimLeft(s, " \t\r\n")))
	if err != nil {
		return nil, fmt.Errorf("%w: MIME headers: %w", ErrMalformed, err)
	}
	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		return nil, fmt.Errorf("%w: MIME Content-Type: %w", ErrMalformed, err)
	}
	if !strings.HasPrefix(mediaType, "multipart/") {
		return nil, fmt.Errorf("%w: MIME Content-Type is %s, want multipart/mixed", ErrMalformed, mediaType)
	}
	if params["boundary"] == "" {
		return nil, fmt.Errorf("%w: MIME Content-Type has no boundary", ErrMalformed)
	}
	r := multipart.NewReader(msg.Body, params["boundary"])
	var out []part
	for {
		p, err := r.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: MIME part %d: %w", ErrMalformed, len(out)+1, err)
		}
		body, err := io.ReadAll(p)
		if err != nil {
			return nil, fmt.Errorf("%w: MIME part %d: %w", ErrMalformed, len(out)+1, err)
		}
		ct := p.Header.Get("Content-Type")
		if ct == "" {
			return nil, fmt.Errorf("%w: MIME part %d has no Content-Type", ErrMalformed, len(out)+1)
		}
		out = append(out, part{contentType: ct, content: string(body)})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: MIME document has no parts", ErrMalformed)
	}
	return out, nil
}

// writeMIME serializes parts as a multipart/mixed archive. The boundary is
// "//", as Karpenter's, unless a part's content holds that delimiter line;
// then slashes are added until none does, so the output stays a function
// of the input.
func writeMIME(parts []part) string {
	boundary := "//"
	for clashes(parts, boundary) {
		boundary += "/"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=%q\n\n", boundary)
	w := multipart.NewWriter(&b)
	if err := w.SetBoundary(boundary); err != nil {
		panic(err) // "//" and longer runs of slashes are valid boundaries
	}
	for _, p := range parts {
		pw, err := w.CreatePart(textproto.MIMEHeader{"Content-Type": {p.contentType}})
		if err == nil {
			_, err = io.WriteString(pw, p.content)
		}
		if err != nil {
			panic(err) // writes to a bytes.Buffer do not fail
		}
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
	// mime/multipart writes CRLF line ends; cloud-init and nodeadm read
	// LF, and every other line here is LF.
	return strings.ReplaceAll(b.String(), "\r\n", "\n")
}

func clashes(parts []part, boundary string) bool {
	for _, p := range parts {
		if strings.Contains(p.content, "--"+boundary) {
			return true
		}
	}
	return false
}
