// Package auth implements MQTT 5.0 enhanced authentication (section 4.12)
// for the broker and for clients: SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802,
// RFC 7677) over github.com/xdg-go/scram, and the credentials file a broker
// reads them from.
//
// # Exchange
//
// A method's name is the Authentication Method property; its messages
// travel in Authentication Data:
//
//	client                                   broker
//	CONNECT  method, client-first       -->  Method.Start, Step: done=false
//	                                    <--  AUTH 0x18 (continue), server-first
//	AUTH 0x18 client-final              -->  Step: done=true
//	                                    <--  CONNACK 0x00, server-final
//	ClientConversation.Step(server-final): done=true, the broker is verified
//
// Re-authentication is the same with AUTH 0x19 (re-authenticate) in place of
// CONNECT and AUTH 0x00 in place of CONNACK; start a new Conversation for it.
// The client checks the server-final message: a broker that does not know
// the password cannot produce it, so a wrong or missing one is an error
// (ErrServerSignature) even after CONNACK 0x00.
//
// # Errors
//
// A Conversation fails with an error matching ErrBadCredentials (CONNACK
// 0x86 Bad User Name or Password, or DISCONNECT 0x86 on re-authentication)
// or ErrMalformed (data that is not a SCRAM message, or a message out of
// turn: 0x87 Not authorized or 0x80 Unspecified error, as the broker
// chooses). An unknown user is refused
// like a wrong password, at the same step and with the same error: the
// broker answers an unknown user with a made-up salt that is stable for the
// name (RFC 5802 section 5.1), so the exchange does not tell whether the
// name exists. No error carries a password, a key or a proof.
//
// # Credentials file
//
// One user a line; blank lines and lines starting with '#' are skipped;
// leading and trailing blanks are trimmed (as broker.ReadUsers does):
//
//	alice:secret
//	bob:SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=
//
// The user name runs to the first ':'. The rest is either a password, in
// which case both methods and CheckPassword accept it, or stored SCRAM keys
// in PostgreSQL's verifier format, so that the file need not hold a
// password:
//
//	METHOD$ITERATIONS:SALT$STOREDKEY:SERVERKEY
//
// with METHOD SCRAM-SHA-256 or SCRAM-SHA-512 and SALT, STOREDKEY and
// SERVERKEY in standard base64 (RFC 4648 with padding); the keys are as long
// as the hash (32 or 64 bytes), ITERATIONS is at least 4096. SCRAMLine writes
// such a line. A user may have one line per method but not a password and
// keys both. A value that starts with a method name and '$' is always read
// as keys, so a malformed one is an error rather than a password.
//
// User names and passwords are prepared with SASLprep (RFC 4013), as the
// client side prepares them, so "I\u00ADX" and "IX" are the same password.
package auth
