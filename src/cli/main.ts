#!/usr/bin/env node
/**
 * sipspan CLI: argv → config → start. No logic of its own.
 *
 *   sipspan run --config FILE | --name N --listen URI... --upstream URI [--metrics H:P] [--admin H:P] [--node N]
 *   sipspan validate --config FILE
 *   sipspan demo [--calls N] [--rate R] ...
 *   sipspan bench --target URI --rate R --calls N
 *   sipspan standin uas|forward|b2bua --listen URI ...
 */
import process from 'node:process';
import { runCommand } from './commands.ts';

runCommand(process.argv.slice(2)).then(
  (code) => {
    if (code !== null) process.exitCode = code;
  },
  (err: Error) => {
    process.stderr.write(`sipspan: ${err.message}\n`);
    process.exitCode = 1;
  },
);
