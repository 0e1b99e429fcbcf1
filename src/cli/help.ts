/**
 * Each command's help, kept apart from the command modules so `keywarden <command> --help` prints it without
 * loading (or running) anything: no config read, no sandbox, no port, no file.
 */

export const START_USAGE = [
  'Usage: keywarden start [--config <file>] [--sandbox]',
  '',
  'Runs the bot: the Bot Framework endpoint (POST /api/messages), the scan schedule, alerts and workflows.',
  'With no config file (or `mode: sandbox`) it runs the sandbox: emulated clouds, a Bot Connector emulator and',
  'the Agents Playground; the banner prints the Playground URL to open.',
  '',
  '  --config <file>  config file (else KEYWARDEN_CONFIG, else ./keywarden.yaml or ./keywarden.json)',
  '  --sandbox        run against the local emulated clouds',
  '',
  'The port is server.port (default 3978) or PORT. Exit code: 2 for bad config or a port in use.',
  '',
].join('\n');

export const SCAN_USAGE = [
  'Usage: keywarden scan [--json] [--config <file>] [--sandbox]',
  '',
  '  --json           one JSON document: a row per credential (kind, id, name, where, owner, expiresAt, daysLeft, findings) and the errors',
  '  --config <file>  config file (else KEYWARDEN_CONFIG, else ./keywarden.yaml); without one, or with `mode: sandbox`, the sandbox is scanned',
  '  --sandbox        start the emulated clouds in this process and scan them',
  '',
  'Exit code: 0 when every estate was scanned (findings or not), 1 when an estate could not be scanned, 2 for bad usage.',
  '',
].join('\n');

export const DOCTOR_USAGE = [
  'Usage: keywarden doctor [--config <file>] [--sandbox] [--json] [--create-probe-token]',
  '',
  'Checks every configured estate with Keywarden\'s own credential: reachability and each permission of',
  'docs/deploy.md §3, Teams channel references, and the expiry of Keywarden\'s own credentials.',
  '',
  '  --config <file>        config file (else KEYWARDEN_CONFIG, else ./keywarden.yaml); none, or `mode: sandbox`, = the sandbox',
  '  --sandbox              check against the local emulated clouds (started in this process)',
  '  --json                 machine-readable report on stdout',
  '  --create-probe-token   prove Databricks on-behalf-of creation by minting a 5-minute "keywarden doctor probe"',
  '                         token and deleting it at once (default: proved without creating anything)',
  '',
  'Exit code: 0 everything required is in place (warnings allowed), 1 something required is missing, 2 bad config.',
  '',
].join('\n');

export const AUDIT_USAGE = [
  'Usage: keywarden audit --export [file] | --verify [file]  [--config <file>]',
  '',
  '  --export [file]  write the audit log as JSON lines (seq, prevHash, hash on every line); stdout without a file',
  '  --verify [file]  check the hash chain of the store (store.path), or of a file written by --export.',
  '                   With audit.keySecret configured it also checks the HMAC key and the anchors kept in',
  '                   Key Vault (edits and truncation), and says what it could not check.',
  '  --config <file>  config file (else KEYWARDEN_CONFIG, else ./keywarden.yaml)',
  '',
  'Exit code: 0 intact, 1 broken or store not found, 2 bad usage, 3 intact as far as checked but Key Vault',
  'could not be read (key or anchors not checked).',
  '',
].join('\n');

export const PACKAGE_USAGE = [
  'Usage: keywarden package [--config <file>] [--out <file.zip>]',
  '',
  'Builds the Teams app package (manifest v1.24 + icons from appPackage/) with the app id and names from config.',
  '',
  '  --config <file>  config file (else KEYWARDEN_CONFIG, else ./keywarden.yaml)',
  '  --out <file>     where to write the zip (default keywarden-app.zip)',
  '',
].join('\n');

export const COMMAND_USAGE: Record<string, string> = {
  start: START_USAGE,
  scan: SCAN_USAGE,
  doctor: DOCTOR_USAGE,
  audit: AUDIT_USAGE,
  package: PACKAGE_USAGE,
};

/** `--help` / `-h` anywhere among a command's arguments asks for its help. */
export function wantsHelp(argv: readonly string[]): boolean {
  return argv.includes('--help') || argv.includes('-h');
}
