package check

type checker struct {
	in Input
}

func newChecker(in Input) *checker { return &checker{in: in} }

func (c *checker) converged() []Result    { return nil }
func (c *checker) uidIntegrity() []Result { return nil }
func (c *checker) modelResults() []Result { return nil }
func (c *checker) idempotent() []Result   { return nil }
func (c *checker) journals() []Result     { return nil }
func (c *checker) watermarks() []Result   { return nil }
