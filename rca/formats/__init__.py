"""Interchange formats: postmortems as Markdown (both ways), drafts as Markdown, and reading
files of every supported kind (postmortem, incident, eval case) into the store.

- `markdown`: the postmortem Markdown format (docs/markdown-format.md), parsed with line
  numbers for errors and rendered back losslessly -- the front door, re-exporting
  `markdown_syntax` (sections, headings, columns, escapes), `markdown_parse` (reading) and
  `markdown_render` (writing);
- `draft_markdown`: a draft rendered for a reader;
- `importer`: files and directories in, one transaction per file, errors naming file and line.

May import: `rca.domain`, `rca.store` (the importer saves), `rca.errors`.
"""
