package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Flag values that are checked as they are read, so that "--parallel 0" or "--seed abc"
// stops the command before it starts with a message naming the flag:
//
//	syncharness: --parallel: want at least 1, not 0
//	syncharness: --seed: "abc" is not an integer
//
// Both exit with status 2. A flag's default may lie outside its range (0 for "--parallel"
// means "the number of CPUs"): only a value given on the command line is checked.

// intFlag is an int or int64 flag with a range. It implements pflag.Value.
type intFlag[T int | int64] struct {
	p        *T
	def      T
	min, max T // inclusive; max 0: no upper bound
}

// intVar defines an int flag that accepts min to max (max 0: no upper bound).
func intVar[T int | int64](fl *pflag.FlagSet, p *T, name string, def, min, max T, usage string) {
	*p = def
	fl.Var(&intFlag[T]{p: p, def: def, min: min, max: max}, name, usage)
}

func (f *intFlag[T]) String() string { return strconv.FormatInt(int64(*f.p), 10) }

func (f *intFlag[T]) Type() string {
	if _, ok := any(f.p).(*int64); ok {
		return "int64"
	}
	return "int"
}

func (f *intFlag[T]) Set(s string) error {
	bits := 64
	if _, ok := any(f.p).(*int); ok {
		bits = strconv.IntSize
	}
	n, err := parseInt(s, bits)
	if err != nil {
		return err
	}
	v := T(n)
	switch {
	case f.max != 0 && (v < f.min || v > f.max):
		return fmt.Errorf("want %d to %d, not %d", f.min, f.max, v)
	case v < f.min:
		return fmt.Errorf("want at least %d, not %d", f.min, v)
	}
	*f.p = v
	return nil
}

// resetDefault puts the flag back to its default, which Set may refuse (tests run the
// command line several times in one process).
func (f *intFlag[T]) resetDefault() { *f.p = f.def }

// durationFlag is a duration flag of at least min. It implements pflag.Value.
type durationFlag struct {
	p   *time.Duration
	def time.Duration
	min time.Duration
}

// durationVar defines a duration flag that accepts min or more.
func durationVar(fl *pflag.FlagSet, p *time.Duration, name string, def, min time.Duration, usage string) {
	*p = def
	fl.Var(&durationFlag{p: p, def: def, min: min}, name, usage)
}

func (f *durationFlag) String() string { return f.p.String() }
func (f *durationFlag) Type() string   { return "duration" }

func (f *durationFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return notADuration(s)
	}
	if d < f.min {
		if f.min == 0 {
			return fmt.Errorf("cannot be negative: %s", s)
		}
		return fmt.Errorf("want at least %s, not %s", f.min, s)
	}
	*f.p = d
	return nil
}

func (f *durationFlag) resetDefault() { *f.p = f.def }

// parseInt reads a whole number in base 10, with an error that says what is wrong in the
// user's words.
func parseInt(s string, bits int) (int64, error) {
	n, err := strconv.ParseInt(s, 10, bits)
	if errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	if err != nil {
		return 0, fmt.Errorf("%q is not an integer", s)
	}
	return n, nil
}

func notADuration(s string) error {
	return fmt.Errorf("%q is not a duration (write 500ms, 10s, 2m)", s)
}

// flagError turns cobra's and pflag's flag errors into usage errors that start with the
// flag: `--seed: "abc" is not an integer` rather than strconv's wording.
func flagError(cmd *cobra.Command, err error) error {
	var invalid *pflag.InvalidValueError
	if !errors.As(err, &invalid) {
		return usageError{err}
	}
	f := invalid.GetFlag()
	name := "--" + f.Name
	cause := invalid.Unwrap()
	var num *strconv.NumError
	switch {
	case errors.As(cause, &num) && errors.Is(num.Err, strconv.ErrRange):
		cause = fmt.Errorf("%q is out of range", invalid.GetValue())
	case errors.As(cause, &num):
		cause = fmt.Errorf("%q is not %s", invalid.GetValue(), numberKind(f.Value.Type()))
	case f.Value.Type() == "duration" && strings.HasPrefix(cause.Error(), "time: "):
		cause = notADuration(invalid.GetValue())
	}
	return usagef("%s: %v", name, cause)
}

func numberKind(typ string) string {
	switch {
	case strings.HasPrefix(typ, "float"):
		return "a number"
	case typ == "bool":
		return "true or false"
	default:
		return "an integer"
	}
}

func init() { rootCmd.SetFlagErrorFunc(flagError) }
