package client

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"sync"
)

// sharesAKey reports whether raw, an answer that decoded into out, can be
// the answer out describes: false only when raw is a JSON object with at
// least one key, out points to a struct, and none of raw's keys names one
// of the struct's fields (compared without case, as encoding/json
// matches them). An empty object, an array, a map or a type that decodes
// itself are not judged.
func sharesAKey(raw []byte, out any) bool {
	t := reflect.TypeOf(out)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct ||
		t.Implements(unmarshalerType) {
		return true
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return true
	}
	var keys map[string]json.RawMessage
	if json.Unmarshal(raw, &keys) != nil || len(keys) == 0 {
		return true
	}
	fields := fieldNames(t.Elem())
	for k := range keys {
		if fields[strings.ToLower(k)] {
			return true
		}
	}
	return false
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// fieldNamesCache holds fieldNames per struct type.
var fieldNamesCache sync.Map // reflect.Type → map[string]bool

// fieldNames is the lower-cased JSON names of t's fields, those of
// embedded structs included.
func fieldNames(t reflect.Type) map[string]bool {
	if v, ok := fieldNamesCache.Load(t); ok {
		return v.(map[string]bool)
	}
	names := map[string]bool{}
	addFieldNames(t, names, 0)
	fieldNamesCache.Store(t, names)
	return names
}

func addFieldNames(t reflect.Type, names map[string]bool, depth int) {
	if depth > 8 {
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if f.Anonymous && name == "" && ft.Kind() == reflect.Struct {
			addFieldNames(ft, names, depth+1)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names[strings.ToLower(name)] = true
	}
}
