package bench

import (
	"strconv"
	"strings"
)

func itoa(n int) string { return strconv.Itoa(n) }

// fmtShape writes a shape as the CLI takes it: "10,1,10240,15360".
func fmtShape(v []int64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatInt(x, 10)
	}
	return strings.Join(s, ",")
}
