#!/usr/bin/env python3
"""Embeds text files into a C source file: embed_files.py SYMBOL OUTPUT.c FILE...

Defines `const struct so_embedded SYMBOL[]` ({name, text, length}) ending in a {NULL, NULL, 0} entry, so that
the binary carries its migrations and its OpenAPI document and needs no data files at run time. The texts are
byte arrays (ISO C limits string literals to 4095 characters) with a NUL after the last byte."""
import os
import sys


def main() -> int:
    symbol, output, inputs = sys.argv[1], sys.argv[2], sys.argv[3:]
    lines = ['#include "salesops/embedded.h"', '']
    entries = []
    for n, path in enumerate(sorted(inputs, key=os.path.basename)):
        with open(path, 'rb') as f:
            data = f.read()
        array = '%s_%d' % (symbol, n)
        lines.append('static const unsigned char %s[] = {' % array)
        body = list(data) + [0]
        for i in range(0, len(body), 16):
            lines.append('    ' + ', '.join('%d' % b for b in body[i:i + 16]) + ',')
        lines.append('};')
        entries.append('    {"%s", (const char *)%s, %d},' % (os.path.basename(path), array, len(data)))
    lines.append('')
    lines.append('const struct so_embedded %s[] = {' % symbol)
    lines.extend(entries)
    lines.append('    {0, 0, 0},')
    lines.append('};')
    with open(output, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
