package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gatehouse-dev/gatehouse/auth"
)

// The operator commands print aligned columns for a person on a terminal,
// and with -json one JSON document for scripts.

func printUsers(w io.Writer, us []auth.UserInfo, asJSON bool) error {
	if asJSON {
		if us == nil {
			us = []auth.UserInfo{}
		}
		return writeJSON(w, map[string]any{"users": us})
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EMAIL\tID\tGROUPS\tSECOND FACTORS\tDISABLED")
	for _, u := range us {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Email, u.ID, listOrDash(u.Groups), listOrDash(u.SecondFactors), yesNo(u.Disabled))
	}
	return tw.Flush()
}

func showUser(ctx context.Context, w io.Writer, svc *auth.Service, email string, asJSON bool) error {
	u, err := svc.User(ctx, email)
	if err != nil {
		return err
	}
	ss, err := svc.Sessions(ctx, u.ID, "")
	if err != nil {
		return err
	}
	ts, err := svc.Tokens(ctx, u.ID)
	if err != nil {
		return err
	}
	if asJSON {
		if ss == nil {
			ss = []auth.SessionInfo{}
		}
		if ts == nil {
			ts = []auth.TokenInfo{}
		}
		return writeJSON(w, map[string]any{"user": u, "sessions": ss, "tokens": ts})
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "email:\t%s\nid:\t%s\ncreated:\t%s\ngroups:\t%s\naccount groups:\t%s\nsecond factors:\t%s\ndisabled:\t%s\n",
		u.Email, u.ID, stamp(u.Created), listOrDash(u.Groups), listOrDash(u.AccountGroups), listOrDash(u.SecondFactors), yesNo(u.Disabled))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nsessions (%d):\n", len(ss))
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ID\tCREATED\tLAST SEEN\tEXPIRES\tIP\tMFA\tMETHOD\tUSER AGENT")
	for _, s := range ss {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, stamp(s.CreatedAt), stampPtr(s.LastSeenAt), stamp(s.ExpiresAt),
			orDash(s.IP), yesNo(s.MFA), s.Method, orDash(s.UserAgent))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\ntokens (%d):\n", len(ts))
	return printTokenTable(w, ts, "  ")
}

func printTokens(w io.Writer, ts []auth.TokenInfo, asJSON bool) error {
	if asJSON {
		if ts == nil {
			ts = []auth.TokenInfo{}
		}
		return writeJSON(w, map[string]any{"tokens": ts})
	}
	return printTokenTable(w, ts, "")
}

func printTokenTable(w io.Writer, ts []auth.TokenInfo, indent string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, indent+"ID\tNAME\tCREATED\tEXPIRES\tLAST USED")
	for _, t := range ts {
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t%s\n", indent, t.ID, t.Name, stamp(t.CreatedAt), stamp(t.ExpiresAt), stampPtr(t.LastUsed))
	}
	return tw.Flush()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func listOrDash(l []string) string {
	if len(l) == 0 {
		return "-"
	}
	return strings.Join(l, ",")
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func stampPtr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return stamp(*t)
}
