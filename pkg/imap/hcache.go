package imap

import "mailsrv/pkg/mailstore"

// The header cache (package mailstore, hcache.go) answers header reads by
// the fields they need; these say which fields a FETCH or a SEARCH needs.

// envelopeFields are the header fields an ENVELOPE is made of (RFC 3501
// section 7.4.2).
var envelopeFields = []string{"Date", "Subject", "From", "Sender", "Reply-To", "To", "Cc", "Bcc",
	"In-Reply-To", "Message-ID"}

// fetchFields returns the header fields that header-only items need
// (headerOnly(its) is true): nil when they need the whole header.
func fetchFields(its []fetchItem) []string {
	fields := []string{}
	for _, it := range its {
		switch {
		case it.name == "ENVELOPE":
			fields = append(fields, envelopeFields...)
		case it.name == "RFC822.HEADER":
			return nil
		case it.sec != nil && it.sec.spec == "HEADER.FIELDS":
			fields = append(fields, it.sec.fields...)
		case it.sec != nil: // HEADER, HEADER.FIELDS.NOT
			return nil
		}
	}
	return fields
}

// searchFields returns the header fields that the keys of a search read
// from a message header (BODY and TEXT read the whole message anyway).
func searchFields(k *searchKey) []string {
	fields := []string{}
	switch k.op {
	case "HEADER":
		fields = append(fields, k.field)
	case "SENTBEFORE", "SENTON", "SENTSINCE":
		fields = append(fields, "Date")
	}
	for _, kid := range k.kids {
		fields = append(fields, searchFields(kid)...)
	}
	return fields
}

// headerBatch starts a command that reads many headers (FETCH, SEARCH);
// the function it returns ends it, writing what the cache learned.
func (s *session) headerBatch(f *mailstore.Folder) func() {
	end := f.HeaderBatch()
	return func() {
		if err := end(); err != nil {
			s.log.Warn("header cache", "folder", f.Name, "err", err)
		}
	}
}
