package proxy

import (
	"encoding/base64"
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// errMUTF7 is returned by decodeMailbox for a name that is not valid modified UTF-7.
var errMUTF7 = errors.New("is not valid modified UTF-7 (RFC 3501 §5.1.3)")

// mutf7 is the base64 alphabet of modified UTF-7: ',' instead of '/', no padding.
var mutf7 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

// decodeMailbox decodes a mailbox name as a server does before it splits the name into
// levels: modified UTF-7 (RFC 3501 §5.1.3), where "&-" is '&' and "&...-" is base64 of
// UTF-16BE. Raw UTF-8 (a client that enabled UTF8=ACCEPT) is taken as it is. The
// decoding is strict, as the RFC requires and go-imap's own decoder is: printable ASCII
// encoded in base64 (so "&AC4-" for '.' and "&AC8-" for '/'), two encoded runs in a
// row, an unterminated run, bad padding bits or a lone surrogate are errors, so that a
// lenient server cannot read a name differently from the confinement.
func decodeMailbox(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", errMUTF7
	}
	if !strings.Contains(name, "&") {
		return name, nil
	}
	var b strings.Builder
	b.Grow(len(name))
	shifted := false // the previous run was base64
	for i := 0; i < len(name); i++ {
		ch := name[i]
		if ch != '&' {
			b.WriteByte(ch)
			shifted = false
			continue
		}
		end := strings.IndexByte(name[i+1:], '-')
		if end < 0 {
			return "", errMUTF7
		}
		run := name[i+1 : i+1+end]
		i += end + 1
		if run == "" {
			b.WriteByte('&')
			shifted = false
			continue
		}
		if shifted {
			return "", errMUTF7
		}
		s, err := decodeRun(run)
		if err != nil {
			return "", err
		}
		b.WriteString(s)
		shifted = true
	}
	return b.String(), nil
}

// decodeRun decodes the base64 between '&' and '-'.
func decodeRun(run string) (string, error) {
	raw, err := mutf7.Strict().DecodeString(run)
	if err != nil || len(raw)%2 != 0 || len(raw) == 0 {
		return "", errMUTF7
	}
	units := make([]uint16, len(raw)/2)
	for i := range units {
		units[i] = uint16(raw[2*i])<<8 | uint16(raw[2*i+1])
	}
	var b strings.Builder
	for i := 0; i < len(units); i++ {
		r := rune(units[i])
		if utf16.IsSurrogate(r) {
			if i+1 == len(units) {
				return "", errMUTF7
			}
			i++
			if r = utf16.DecodeRune(r, rune(units[i])); r == utf8.RuneError {
				return "", errMUTF7
			}
		} else if r >= 0x20 && r <= 0x7e {
			return "", errMUTF7 // printable ASCII must stand for itself
		}
		b.WriteRune(r)
	}
	return b.String(), nil
}
