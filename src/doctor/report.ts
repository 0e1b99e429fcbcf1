import { redactText } from '../logging/redact.js';
import type { CheckStatus, DoctorCheck, DoctorEstate, DoctorReport, OwnCredentialFinding } from './types.js';

/** Turns a DoctorReport into the checklist people read, or JSON for machines; both pass through redaction. */

export const SYMBOL: Record<CheckStatus, string> = { pass: '✓', fail: '✗', warn: '!', skip: '-', info: 'i' };

const HEADING: Record<DoctorEstate, string> = {
  config: 'Configuration', databricks: 'Azure Databricks', keyvault: 'Key Vault', graph: 'Microsoft Graph', datafactory: 'Data Factory', teams: 'Teams',
};

/** Required failures (and an expired own credential) make the exit code 1; warnings never do. */
export function summarize(checks: DoctorCheck[], own: OwnCredentialFinding[]): Pick<DoctorReport, 'summary' | 'exitCode'> {
  const count = (s: CheckStatus) => checks.filter((c) => c.status === s).length + own.filter((o) => o.status === s).length;
  const blocking = checks.some((c) => c.status === 'fail' && c.required) || own.some((o) => o.status === 'fail');
  return { summary: { passed: count('pass'), warnings: count('warn'), failed: count('fail'), skipped: count('skip') }, exitCode: blocking ? 1 : 0 };
}

function checkLines(c: DoctorCheck): string[] {
  const optional = c.status === 'fail' && !c.required ? ' (optional)' : '';
  const lines = [`  ${SYMBOL[c.status]} ${c.title}${optional}${c.detail ? ` — ${c.detail}` : ''}`];
  if (c.status === 'fail' || c.status === 'warn') {
    if (c.missing) lines.push(`      missing: ${c.missing}`);
    (c.fix ?? []).forEach((step, i) => lines.push(`      ${i === 0 ? 'fix:' : '    '}     ${c.fix!.length > 1 ? `${i + 1}. ` : ''}${step}`));
  }
  return lines;
}

function ownLine(o: OwnCredentialFinding): string {
  if (o.expiryKnown === false) return `  ${SYMBOL[o.status]} ${o.where}: ${o.name}${o.note ? ` — ${o.note}` : ''}`;
  const when = o.expiresAt === null ? 'never expires' : `${o.daysLeft! < 0 ? `expired ${-o.daysLeft!} day(s) ago` : `${o.daysLeft} day(s) left`} (${new Date(o.expiresAt).toISOString().slice(0, 10)})`;
  return `  ${SYMBOL[o.status]} ${o.where}: ${o.name} — ${when}${o.note ? ` — ${o.note}` : ''}`;
}

export function formatText(report: DoctorReport): string {
  const id = report.identity;
  const out: string[] = [
    `Keywarden doctor — ${report.mode} mode, config: ${report.configSource}`,
    `Keywarden's identity: ${id.credentialType}${id.clientId ? `, client id ${id.clientId}` : ''}${id.tenantId ? `, tenant ${id.tenantId}` : ''}`,
    '',
  ];
  const groups = new Map<string, DoctorCheck[]>();
  for (const c of report.checks) {
    const key = `${HEADING[c.estate]} · ${c.scope}`;
    groups.set(key, [...(groups.get(key) ?? []), c]);
  }
  for (const [heading, checks] of groups) out.push(heading, ...checks.flatMap(checkLines), '');
  if (report.ownCredentials.length > 0) out.push('Keywarden\'s own credentials', ...report.ownCredentials.map(ownLine), '');
  const s = report.summary;
  out.push(`Result: ${s.passed} passed, ${s.warnings} warning(s), ${s.failed} failed, ${s.skipped} not checked — ${report.exitCode === 0
    ? 'everything required is in place (exit 0)'
    : 'something required is missing: grant what is listed above, then run doctor again (exit 1)'}`);
  return redactText(`${out.join('\n')}\n`);
}

export function formatJson(report: DoctorReport): string {
  return redactText(`${JSON.stringify(report, null, 2)}\n`);
}
