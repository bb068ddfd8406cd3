package mail

import (
	"bytes"
	"fmt"
	"html/template"
	"strings"
	"time"
)

var resetHTML = template.Must(template.New("reset").Parse(`<!DOCTYPE html>
<html><body style="font-family: Arial, sans-serif; line-height: 1.6; color: #333;">
<div style="max-width: 600px; margin: 0 auto; padding: 20px;">
<div style="background-color: #4CAF50; color: white; padding: 20px; text-align: center;"><h1>Password Reset</h1></div>
<div style="padding: 20px; background-color: #f9f9f9;">
<p>{{if .Name}}Hello {{.Name}},{{else}}Hello,{{end}}</p>
<p>You requested a password reset for your {{.Project}} account. Click the button below to reset your password:</p>
<p style="text-align: center;"><a href="{{.Link}}" style="display: inline-block; padding: 12px 24px; background-color: #4CAF50; color: white; text-decoration: none; border-radius: 4px;">Reset Password</a></p>
<p>Or copy and paste this link into your browser:</p>
<p style="word-break: break-all;">{{.Link}}</p>
<p><strong>This link will expire in {{.Expiry}}.</strong></p>
<p>If you did not request a password reset, please ignore this email.</p>
<p>Best regards,<br>The {{.Project}} Team</p>
</div></div></body></html>`))

// PasswordReset builds the password-reset email (reference §4.9 with fixes
// 7 and 32: the link is built by the caller, the HTML is escaped).
func PasswordReset(to, firstName, project, link string, ttlMinutes int) Message {
	expiry := humanDuration(time.Duration(ttlMinutes) * time.Minute)
	greeting := "Hello,"
	if strings.TrimSpace(firstName) != "" {
		greeting = "Hello " + firstName + ","
	}
	text := greeting + "\n\n" +
		"You requested a password reset for your " + project + " account.\n\n" +
		"Please click the link below to reset your password:\n" + link + "\n\n" +
		"This link will expire in " + expiry + ".\n\n" +
		"If you did not request a password reset, please ignore this email.\n\n" +
		"Best regards,\nThe " + project + " Team\n"
	var html bytes.Buffer
	_ = resetHTML.Execute(&html, map[string]string{"Name": strings.TrimSpace(firstName), "Project": project, "Link": link, "Expiry": expiry})
	return Message{To: to, Subject: "Password Reset Request", Text: text, HTML: html.String(), Secret: true}
}

var inviteHTML = template.Must(template.New("invite").Parse(`<!DOCTYPE html>
<html><body style="font-family: Arial, sans-serif; line-height: 1.6; color: #333;">
<div style="max-width: 600px; margin: 0 auto; padding: 20px;">
<div style="background-color: #4CAF50; color: white; padding: 20px; text-align: center;"><h1>You are invited</h1></div>
<div style="padding: 20px; background-color: #f9f9f9;">
<p>Hello,</p>
<p>{{if .Inviter}}{{.Inviter}} invited you{{else}}You are invited{{end}} to join <strong>{{.Org}}</strong> on {{.Project}} as {{.Role}}.</p>
<p>Create an account (or log in) with this email address, then accept the invitation:</p>
<p style="text-align: center;"><a href="{{.Link}}" style="display: inline-block; padding: 12px 24px; background-color: #4CAF50; color: white; text-decoration: none; border-radius: 4px;">Accept Invitation</a></p>
<p>Or copy and paste this link into your browser:</p>
<p style="word-break: break-all;">{{.Link}}</p>
<p><strong>This invitation will expire in {{.Expiry}}.</strong></p>
<p>If you were not expecting this invitation, you can ignore this email.</p>
<p>Best regards,<br>The {{.Project}} Team</p>
</div></div></body></html>`))

// Invitation builds the email inviting an address to an organization.
func Invitation(to, inviter, orgName, role, project, link string, ttl time.Duration) Message {
	expiry := humanDuration(ttl)
	who := "You are invited"
	if strings.TrimSpace(inviter) != "" {
		who = inviter + " invited you"
	}
	text := "Hello,\n\n" +
		who + " to join " + orgName + " on " + project + " as " + role + ".\n\n" +
		"Create an account (or log in) with this email address, then accept the invitation:\n" + link + "\n\n" +
		"This invitation will expire in " + expiry + ".\n\n" +
		"If you were not expecting this invitation, you can ignore this email.\n\n" +
		"Best regards,\nThe " + project + " Team\n"
	var html bytes.Buffer
	_ = inviteHTML.Execute(&html, map[string]string{"Inviter": strings.TrimSpace(inviter), "Org": orgName, "Role": role,
		"Project": project, "Link": link, "Expiry": expiry})
	return Message{To: to, Subject: "Invitation to join " + orgName, Text: text, HTML: html.String(), Secret: true}
}

// humanDuration words a whole number of days, hours or minutes.
func humanDuration(d time.Duration) string {
	unit := func(n int, one, many string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %s", n, many)
	}
	switch {
	case d >= 24*time.Hour && d%(24*time.Hour) == 0:
		return unit(int(d/(24*time.Hour)), "day", "days")
	case d >= time.Hour && d%time.Hour == 0:
		return unit(int(d/time.Hour), "hour", "hours")
	}
	return unit(int(d/time.Minute), "minute", "minutes")
}
