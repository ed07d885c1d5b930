package proxy

import "net/http"

// SetUserID records the user a gateway endpoint (login, register, me)
// identified, so that the request's log line carries it. It is a no-op for
// a request that did not come through a Gateway.
func SetUserID(r *http.Request, id string) {
	if st := stateFrom(r.Context()); st != nil {
		st.id.UserID = id
	}
}
