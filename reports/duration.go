package reports

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// millis is a time.Duration written to JSON as a number of milliseconds in exact decimal
// notation: 412, 412.5 or 0.000001 (one nanosecond). Writing never rounds, so reading gives
// back the same duration to the nanosecond.
type millis time.Duration

// MarshalJSON writes d as an exact decimal number of milliseconds.
func (d millis) MarshalJSON() ([]byte, error) {
	return []byte(formatMillis(time.Duration(d))), nil
}

// UnmarshalJSON reads any JSON number of milliseconds. Numbers with more than six decimals
// (finer than a nanosecond) are rounded to the nearest nanosecond, halves away from zero.
func (d *millis) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return fmt.Errorf("duration: null is not a number of milliseconds")
	}
	v, err := parseMillis(s)
	if err != nil {
		return err
	}
	*d = millis(v)
	return nil
}

// formatMillis writes d in milliseconds with as many decimals as it needs and no more.
func formatMillis(d time.Duration) string {
	neg := d < 0
	u := uint64(d)
	if neg {
		u = -u // two's complement: exact even for math.MinInt64
	}
	whole, frac := u/1e6, u%1e6
	s := strconv.FormatUint(whole, 10)
	if frac != 0 {
		f := fmt.Sprintf("%06d", frac)
		s += "." + strings.TrimRight(f, "0")
	}
	if neg {
		s = "-" + s
	}
	return s
}

var (
	nanosPerMilli = big.NewRat(1e6, 1)
	minDuration   = new(big.Int).SetInt64(-1 << 63)
	maxDuration   = new(big.Int).SetInt64(1<<63 - 1)
)

// parseMillis reads a JSON number of milliseconds exactly (no floating point).
func parseMillis(s string) (time.Duration, error) {
	if s == "" || strings.ContainsAny(s, " _/\"") {
		return 0, fmt.Errorf("duration: %q is not a number of milliseconds", s)
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, fmt.Errorf("duration: %q is not a number of milliseconds", s)
	}
	r.Mul(r, nanosPerMilli)
	n := roundRat(r)
	if n.Cmp(minDuration) < 0 || n.Cmp(maxDuration) > 0 {
		return 0, fmt.Errorf("duration: %s ms is out of range", s)
	}
	return time.Duration(n.Int64()), nil
}

// roundRat rounds r to the nearest integer, halves away from zero.
func roundRat(r *big.Rat) *big.Int {
	num, den := r.Num(), r.Denom()
	q, m := new(big.Int).QuoRem(num, den, new(big.Int)) // truncated toward zero
	twice := new(big.Int).Mul(new(big.Int).Abs(m), big.NewInt(2))
	if twice.Cmp(den) >= 0 {
		if num.Sign() < 0 {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	return q
}
