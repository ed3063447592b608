package main

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// textStyle says how renderText lays out Markdown for reading in a terminal.
type textStyle struct {
	width int  // wrap paragraphs to this many columns
	bold  bool // headings in bold (ANSI escapes); else underlined with = and -
}

const (
	boldOn  = "\x1b[1m"
	boldOff = "\x1b[0m"
)

var (
	linkRE = regexp.MustCompile(`\[([^\]]+)\]\(([^)]+)\)`)
	codeRE = regexp.MustCompile("`([^`]+)`")
)

// nbsp stands for a space inside `code` while text is wrapped: code is never split.
const nbsp = '\ue000' // a private-use rune: strings.Fields does not split at it

// inline turns the inline Markdown of the reference into text: `code` loses its
// backticks (a span without a letter or digit, such as `#`, is quoted instead) and is
// kept on one line, [text](url) becomes "text (url)", \| becomes |.
func inline(s string) string {
	s = linkRE.ReplaceAllString(s, "$1 ($2)")
	s = codeRE.ReplaceAllStringFunc(s, func(m string) string {
		code := m[1 : len(m)-1]
		if !strings.ContainsFunc(code, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) {
			code = `"` + code + `"`
		}
		return strings.ReplaceAll(code, " ", string(nbsp))
	})
	return strings.ReplaceAll(s, `\|`, "|")
}

// renderText lays out the Markdown of the scenario reference (headings, paragraphs,
// lists, fenced code, tables) as text for a terminal: paragraphs wrapped to the width,
// code indented by four spaces and never wrapped, tables as aligned columns when they
// fit, else one block a row.
func renderText(md string, st textStyle) string {
	if st.width < 40 {
		st.width = 40
	}
	var b strings.Builder
	lines := strings.Split(strings.TrimRight(md, "\n"), "\n")
	blank := true // the output ends with a blank line (or is empty)
	sep := func() {
		if !blank {
			b.WriteByte('\n')
			blank = true
		}
	}
	for i := 0; i < len(lines); {
		line := lines[i]
		switch {
		case strings.TrimSpace(line) == "":
			i++
		case strings.HasPrefix(line, "```"):
			sep()
			for i++; i < len(lines) && !strings.HasPrefix(lines[i], "```"); i++ {
				if lines[i] == "" {
					b.WriteByte('\n')
				} else {
					b.WriteString("    " + lines[i] + "\n")
				}
			}
			i++ // closing fence
			blank = false
		case strings.HasPrefix(line, "#"):
			sep()
			level := len(line) - len(strings.TrimLeft(line, "#"))
			title := inline(strings.TrimSpace(line[level:]))
			switch {
			case st.bold:
				b.WriteString(boldOn + title + boldOff + "\n")
			case level == 1:
				b.WriteString(title + "\n" + strings.Repeat("=", utf8.RuneCountInString(title)) + "\n")
			case level == 2:
				b.WriteString(title + "\n" + strings.Repeat("-", utf8.RuneCountInString(title)) + "\n")
			default:
				b.WriteString(title + "\n")
			}
			blank = false
			i++
		case strings.HasPrefix(line, "|"):
			sep()
			var rows [][]string
			for ; i < len(lines) && strings.HasPrefix(lines[i], "|"); i++ {
				if strings.HasPrefix(lines[i], "|---") {
					continue
				}
				rows = append(rows, tableCells(lines[i]))
			}
			writeTable(&b, rows, st.width)
			blank = false
		case strings.HasPrefix(line, "- "):
			sep()
			for ; i < len(lines) && strings.HasPrefix(lines[i], "- "); i++ {
				item := lines[i][2:]
				for i+1 < len(lines) && strings.HasPrefix(lines[i+1], "  ") && strings.TrimSpace(lines[i+1]) != "" {
					i++
					item += " " + strings.TrimSpace(lines[i])
				}
				writeWrapped(&b, inline(item), "  - ", "    ", st.width)
			}
			blank = false
		default:
			sep()
			para := line
			for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "" && !startsBlock(lines[i]); i++ {
				para += " " + strings.TrimSpace(lines[i])
			}
			writeWrapped(&b, inline(para), "", "", st.width)
			blank = false
		}
	}
	return strings.ReplaceAll(b.String(), string(nbsp), " ")
}

func startsBlock(line string) bool {
	return strings.HasPrefix(line, "```") || strings.HasPrefix(line, "#") ||
		strings.HasPrefix(line, "|") || strings.HasPrefix(line, "- ")
}

// tableCells splits a Markdown table row, keeping \| inside a cell.
func tableCells(row string) []string {
	row = strings.TrimSpace(row)
	row = strings.TrimPrefix(row, "|")
	row = strings.TrimSuffix(row, "|")
	var cells []string
	var cur strings.Builder
	for i := 0; i < len(row); i++ {
		switch {
		case row[i] == '\\' && i+1 < len(row) && row[i+1] == '|':
			cur.WriteString(`\|`)
			i++
		case row[i] == '|':
			cells = append(cells, inline(strings.TrimSpace(cur.String())))
			cur.Reset()
		default:
			cur.WriteByte(row[i])
		}
	}
	return append(cells, inline(strings.TrimSpace(cur.String())))
}

// writeTable writes rows (the first is the header) as aligned columns when they fit in
// width, else each row as its first cell followed by the others, indented and wrapped.
func writeTable(b *strings.Builder, rows [][]string, width int) {
	if len(rows) == 0 {
		return
	}
	cols := 0
	for _, r := range rows {
		cols = max(cols, len(r))
	}
	widths := make([]int, cols)
	for _, r := range rows {
		for j, c := range r {
			widths[j] = max(widths[j], utf8.RuneCountInString(c))
		}
	}
	total := 2 * (cols - 1)
	for _, w := range widths {
		total += w
	}
	if total <= width {
		for k, r := range rows {
			var line strings.Builder
			for j, c := range r {
				if j < len(r)-1 {
					c += strings.Repeat(" ", widths[j]-utf8.RuneCountInString(c)+2)
				}
				line.WriteString(c)
			}
			b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
			if k == 0 {
				var rule strings.Builder
				for j, w := range widths {
					if j > 0 {
						rule.WriteString("  ")
					}
					rule.WriteString(strings.Repeat("-", w))
				}
				b.WriteString(rule.String() + "\n")
			}
		}
		return
	}
	header := rows[0]
	for k, r := range rows[1:] {
		if k > 0 {
			b.WriteByte('\n')
		}
		writeWrapped(b, r[0], "", "", width)
		for j := 1; j < len(r); j++ {
			if r[j] == "" {
				continue
			}
			text := r[j]
			if len(r) > 2 && j < len(header) && header[j] != "" {
				text = header[j] + ": " + text
			}
			writeWrapped(b, text, "    ", "    ", width)
		}
	}
}

// writeWrapped writes text wrapped to width, the first line after first and the others
// after indent. A word longer than the line stands alone on its line.
func writeWrapped(b *strings.Builder, text, first, indent string, width int) {
	line := first
	empty := true
	for _, w := range strings.Fields(text) {
		if !empty && utf8.RuneCountInString(line)+1+utf8.RuneCountInString(w) > width {
			b.WriteString(line + "\n")
			line, empty = indent, true
		}
		if !empty {
			line += " "
		}
		line += w
		empty = false
	}
	b.WriteString(line + "\n")
}
