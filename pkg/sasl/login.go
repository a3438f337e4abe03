package sasl

// login is the LOGIN mechanism (draft-murchison-sasl-login-00): the server
// asks "Username:" then "Password:"; an initial response is the user name.
type login struct {
	check PasswordFunc
	step  int // 0 start, 1 user name asked, 2 password asked, 3 done
	user  string
}

// Challenges of LOGIN; clients match them literally.
var (
	loginUser = []byte("Username:")
	loginPass = []byte("Password:")
)

// NewLogin returns a LOGIN server that calls check with the user name and
// password.
func NewLogin(check PasswordFunc) Mechanism { return &login{check: check} }

func (m *login) Next(resp []byte) ([]byte, bool, error) {
	if len(resp) > MaxResponse {
		m.step = 3
		return nil, true, ErrTooLong
	}
	switch m.step {
	case 0:
		if len(resp) == 0 {
			m.step = 1
			return loginUser, false, nil
		}
		m.user, m.step = string(resp), 2
		return loginPass, false, nil
	case 1:
		if len(resp) == 0 {
			m.step = 3
			return nil, true, ErrSyntax
		}
		m.user, m.step = string(resp), 2
		return loginPass, false, nil
	case 2:
		m.step = 3
		return nil, true, m.check(m.user, string(resp))
	}
	return nil, true, ErrUnexpected
}
