import { describe, expect, it } from 'vitest';
import { playgroundLines } from '../../src/sandbox/start.js';

describe('the sandbox banner names the Playground URL to open', () => {
  it('marks the Playground line and prints the URL it really got', () => {
    expect(playgroundLines('http://127.0.0.1:56150', 56150)).toEqual(['  OPEN THIS → Agents Playground:    http://127.0.0.1:56150  (the chat client)']);
  });

  it('says so when 56150 was taken and the Playground moved', () => {
    const lines = playgroundLines('http://127.0.0.1:41234', 56150);
    expect(lines[0]).toContain('OPEN THIS → Agents Playground:    http://127.0.0.1:41234');
    expect(lines[1]).toContain('port 56150 was taken');
  });

  it('says when the Playground did not start', () => {
    expect(playgroundLines(undefined, 56150)[0]).toMatch(/not started/);
  });
});
