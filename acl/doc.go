// Package acl authorizes publishing, receiving and subscribing with the
// semantics of mosquitto's acl_file (mosquitto.conf(5), "acl_file").
//
// # File format
//
// One rule a line; leading and trailing blanks are ignored, and so are blank
// lines and lines whose first character is '#'.
//
//	topic [read|write|readwrite|deny] TOPIC    a rule for the current section
//	user NAME                                  starts the section of user NAME
//	pattern [read|write|readwrite|deny] TOPIC  a rule for every client
//
// TOPIC is a topic filter ('+' and '#' allowed) and runs to the end of the
// line, so it may hold spaces when the access word is given. Without an
// access word the rule grants readwrite. topic lines before the first user
// line form the anonymous section: they apply to clients that gave no user
// name. A user name not named by any user line gets the pattern rules only.
// pattern lines apply to every client wherever they stand in the file; in
// them a level that is exactly %c stands for the client identifier and one
// that is exactly %u for the user name. Where mosquitto would take "a%cb"
// literally, Parse refuses it: a placeholder must fill a whole level. A file
// with no rule at all denies everything, as mosquitto does once acl_file is
// set.
//
// Parse is stricter than mosquitto in three places, each a line that
// mosquitto reads in a way its author rarely means: an unknown keyword, a
// TOPIC that is not a valid topic filter, and a rule whose only word is an
// access word ("topic deny" is, to mosquitto, readwrite on the topic
// "deny") are errors naming the file and line.
//
// # Publishing and receiving: Allowed
//
// Allowed(user, clientID, topic, access) decides a concrete topic name:
// Write for a PUBLISH from the client, Read for each message about to be
// delivered to it. The rules that apply are the client's section (the
// anonymous one when user is "") and the pattern rules. Access is denied if
// any applicable deny rule matches the topic, whatever order the rules came
// in; otherwise it is granted if any applicable rule that grants the access
// matches the topic. Matching is MQTT's (section 4.7): a rule "#" or "+/x"
// does not match a topic that starts with '$', so $SYS needs a rule of its
// own, as in mosquitto.
//
// Mosquitto 2 checks the user's section (denials first) before the patterns,
// so there a user's grant beats a pattern's deny; here a deny wins wherever
// it stands.
//
// # Subscribing: SubscribeAllowed
//
// mosquitto's acl_file admits every SUBSCRIBE and filters each message at
// delivery. SubscribeAllowed refuses up front any filter that could match a
// topic the client may not read, the rule mosquitto applies to bridge
// subscriptions (mosquitto_sub_matches_acl). A filter F is allowed when:
//
//   - some applicable rule granting read covers F: every topic name that F
//     matches, that rule matches too. Wildcards in F are taken as the sets
//     they stand for, so "sensors/#" is covered by "sensors/#" or "#", not
//     by "sensors/+"; "+" is covered by "+" or "#"; and a subscription to
//     "#" needs a rule granting "#". One rule must cover F alone: "a" and
//     "a/+/#" together do not admit "a/#".
//   - no applicable deny rule overlaps F: no topic name matches both.
//     With "topic read sensors/#" and "topic deny sensors/secret", a
//     subscription to "sensors/#" is refused and "sensors/public" admitted.
//
// A shared subscription "$share/GROUP/F" is judged by F. A broker should
// still call Allowed with Read for each delivery, as mosquitto does: it is
// cheap, and it covers an ACL reloaded after the subscription was made.
//
// # Client identifiers and user names that would widen a pattern
//
// CVE-2017-7650: with "pattern readwrite %c/#", a client calling itself "#"
// would be granted "#/#", everything. A client identifier or user name is
// never substituted into a pattern when it is empty or contains '+', '#' or
// '/' (as mosquitto 1.4.12 and later refuse), nor when it starts with '$'
// and would fill the first level (client id "$SYS" would otherwise be
// granted "$SYS/#"). Such a pattern then grants that client nothing, and a
// deny pattern is applied with '+' in place of the identity, so it denies at
// least what it would for any safe name. Pattern rules with %u do not apply
// to clients without a user name, as in mosquitto.
//
// An *ACL is immutable once parsed and safe for concurrent use. For a
// connection, For binds the identity once and returns *Rules, whose checks
// do not substitute or allocate again.
package acl
