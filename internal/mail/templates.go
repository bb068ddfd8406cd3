package mail

import (
	"bytes"
	"fmt"
	"html/template"
	"strings"
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
	expiry := fmt.Sprintf("%d minutes", ttlMinutes)
	if ttlMinutes%60 == 0 {
		if h := ttlMinutes / 60; h == 1 {
			expiry = "1 hour"
		} else {
			expiry = fmt.Sprintf("%d hours", h)
		}
	}
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
