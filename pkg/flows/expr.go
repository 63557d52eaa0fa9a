package flows

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// A filter expression keeps the records for which it is true:
//
//	status == 'active' and (age >= 18 or verified == true)
//	deleted_at is null and not email == ''
//
// Comparisons are field op literal with op one of == != < <= > >=; literals
// are numbers, 'strings' or "strings", true, false and null; `is null` and
// `is not null` test for a missing or null field; and, or, not and
// parentheses combine them (and binds tighter than or). Numbers compare as
// numbers (a numeric string field too), times with RFC 3339 literals.
type expr interface {
	eval(r Record) bool
}

type andExpr struct{ l, r expr }
type orExpr struct{ l, r expr }
type notExpr struct{ e expr }
type nullExpr struct {
	field string
	null  bool
}
type cmpExpr struct {
	field string
	op    string
	lit   any
}

func (e andExpr) eval(r Record) bool { return e.l.eval(r) && e.r.eval(r) }
func (e orExpr) eval(r Record) bool  { return e.l.eval(r) || e.r.eval(r) }
func (e notExpr) eval(r Record) bool { return !e.e.eval(r) }
func (e nullExpr) eval(r Record) bool {
	v, ok := r[e.field]
	return (!ok || v == nil) == e.null
}

func (e cmpExpr) eval(r Record) bool {
	v, ok := r[e.field]
	if !ok || v == nil || e.lit == nil {
		// null compares equal to null only.
		isNull := !ok || v == nil
		switch e.op {
		case "==":
			return isNull && e.lit == nil
		case "!=":
			return isNull != (e.lit == nil)
		}
		return false
	}
	c, ok := compare(v, e.lit)
	if !ok {
		return e.op == "!="
	}
	switch e.op {
	case "==":
		return c == 0
	case "!=":
		return c != 0
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	case ">=":
		return c >= 0
	}
	return false
}

// compare orders a record value against a literal: -1, 0, 1, and false
// when they cannot be compared.
func compare(v, lit any) (int, bool) {
	switch l := lit.(type) {
	case float64:
		f, ok := number(v)
		if !ok {
			return 0, false
		}
		switch {
		case f < l:
			return -1, true
		case f > l:
			return 1, true
		}
		return 0, true
	case bool:
		b, ok := v.(bool)
		if !ok {
			if n, isNum := number(v); isNum { // databases that store booleans as 0/1
				b, ok = n != 0, true
			}
		}
		if !ok {
			return 0, false
		}
		if b == l {
			return 0, true
		}
		return 1, true
	case string:
		if t, ok := v.(time.Time); ok {
			lt, err := time.Parse(time.RFC3339Nano, l)
			if err != nil {
				return 0, false
			}
			return t.Compare(lt), true
		}
		return strings.Compare(fmt.Sprint(v), l), true
	}
	return 0, false
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int8:
		return float64(x), true
	case int16:
		return float64(x), true
	case int32:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint:
		return float64(x), true
	case uint8:
		return float64(x), true
	case uint16:
		return float64(x), true
	case uint32:
		return float64(x), true
	case uint64:
		return float64(x), true
	case float32:
		return float64(x), true
	case float64:
		return x, true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return f, err == nil
	case []byte:
		f, err := strconv.ParseFloat(strings.TrimSpace(string(x)), 64)
		return f, err == nil
	}
	return 0, false
}

// parseExpr parses a filter expression.
func parseExpr(src string) (expr, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.toks) {
		return nil, fmt.Errorf("unexpected %q at the end", p.toks[p.pos].text)
	}
	return e, nil
}

type token struct {
	kind string // ident, op, str, num, lparen, rparen
	text string
}

func lex(s string) ([]token, error) {
	var out []token
	for i := 0; i < len(s); {
		c := rune(s[i])
		switch {
		case unicode.IsSpace(c):
			i++
		case c == '(' || c == ')':
			kind := "lparen"
			if c == ')' {
				kind = "rparen"
			}
			out = append(out, token{kind, string(c)})
			i++
		case strings.ContainsRune("=!<>", c):
			j := i + 1
			if j < len(s) && s[j] == '=' {
				j++
			}
			op := s[i:j]
			switch op {
			case "==", "!=", "<", "<=", ">", ">=":
			default:
				return nil, fmt.Errorf("unknown operator %q (use == != < <= > >=)", op)
			}
			out = append(out, token{"op", op})
			i = j
		case c == '\'' || c == '"':
			j := strings.IndexByte(s[i+1:], byte(c))
			if j < 0 {
				return nil, fmt.Errorf("unterminated string starting at %d", i)
			}
			out = append(out, token{"str", s[i+1 : i+1+j]})
			i += j + 2
		case c == '-' || c == '.' || unicode.IsDigit(c):
			j := i + 1
			for j < len(s) && (unicode.IsDigit(rune(s[j])) || strings.ContainsRune(".eE+-", rune(s[j]))) {
				j++
			}
			out = append(out, token{"num", s[i:j]})
			i = j
		case c == '_' || unicode.IsLetter(c):
			j := i + 1
			for j < len(s) && (s[j] == '_' || s[j] == '.' || unicode.IsLetter(rune(s[j])) || unicode.IsDigit(rune(s[j]))) {
				j++
			}
			out = append(out, token{"ident", s[i:j]})
			i = j
		default:
			return nil, fmt.Errorf("unexpected %q at %d", c, i)
		}
	}
	return out, nil
}

type parser struct {
	toks []token
	pos  int
}

func (p *parser) peek() (token, bool) {
	if p.pos < len(p.toks) {
		return p.toks[p.pos], true
	}
	return token{}, false
}

func (p *parser) keyword(w string) bool {
	if t, ok := p.peek(); ok && t.kind == "ident" && strings.EqualFold(t.text, w) {
		p.pos++
		return true
	}
	return false
}

func (p *parser) or() (expr, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.keyword("or") {
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = orExpr{l, r}
	}
	return l, nil
}

func (p *parser) and() (expr, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.keyword("and") {
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		l = andExpr{l, r}
	}
	return l, nil
}

func (p *parser) unary() (expr, error) {
	if p.keyword("not") {
		e, err := p.unary()
		if err != nil {
			return nil, err
		}
		return notExpr{e}, nil
	}
	t, ok := p.peek()
	if !ok {
		return nil, fmt.Errorf("expression ends too early")
	}
	if t.kind == "lparen" {
		p.pos++
		e, err := p.or()
		if err != nil {
			return nil, err
		}
		if t, ok := p.peek(); !ok || t.kind != "rparen" {
			return nil, fmt.Errorf("missing )")
		}
		p.pos++
		return e, nil
	}
	if t.kind != "ident" {
		return nil, fmt.Errorf("expected a field name, got %q", t.text)
	}
	p.pos++
	field := t.text
	if p.keyword("is") {
		null := !p.keyword("not")
		if !p.keyword("null") {
			return nil, fmt.Errorf("expected null after %s is", field)
		}
		return nullExpr{field: field, null: null}, nil
	}
	op, ok := p.peek()
	if !ok || op.kind != "op" {
		return nil, fmt.Errorf("expected an operator after %s", field)
	}
	p.pos++
	lt, ok := p.peek()
	if !ok {
		return nil, fmt.Errorf("expected a value after %s %s", field, op.text)
	}
	p.pos++
	var lit any
	switch {
	case lt.kind == "str":
		lit = lt.text
	case lt.kind == "num":
		f, err := strconv.ParseFloat(lt.text, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", lt.text)
		}
		lit = f
	case lt.kind == "ident" && strings.EqualFold(lt.text, "true"):
		lit = true
	case lt.kind == "ident" && strings.EqualFold(lt.text, "false"):
		lit = false
	case lt.kind == "ident" && strings.EqualFold(lt.text, "null"):
		lit = nil
	default:
		return nil, fmt.Errorf("expected a value after %s %s, got %q (quote strings)", field, op.text, lt.text)
	}
	return cmpExpr{field: field, op: op.text, lit: lit}, nil
}
