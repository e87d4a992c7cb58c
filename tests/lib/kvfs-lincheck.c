/*
 * kvfs-lincheck: checks a recorded key-value history file (format in
 * lincheck.h) for linearizability. Exit 0 linearizable, 1 not (with an
 * explanation on stdout), 2 on usage or parse errors, 3 if the search gave
 * up (history too concurrent for the step budget).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/lib/lincheck.h"

int main(int argc, char **argv)
{
	struct lc_history h;
	char err[256];
	FILE *f;

	if (argc != 2 || strcmp(argv[1], "--help") == 0) {
		fprintf(stderr, "usage: kvfs-lincheck HISTORY-FILE   (- for stdin)\n");
		return 2;
	}
	f = strcmp(argv[1], "-") == 0 ? stdin : fopen(argv[1], "r");
	if (!f) {
		perror(argv[1]);
		return 2;
	}
	lc_history_init(&h);
	if (lc_history_load(&h, f, err, sizeof(err))) {
		fprintf(stderr, "%s: %s\n", argv[1], err);
		lc_history_free(&h);
		return 2;
	}
	if (f != stdin)
		fclose(f);
	enum lc_verdict v = lc_check(&h, 0, stdout);
	switch (v) {
	case LC_LINEARIZABLE:
		printf("linearizable (%zu operations)\n", h.n);
		break;
	case LC_VIOLATION:
		printf("NOT linearizable (%zu operations)\n", h.n);
		break;
	case LC_GAVE_UP:
		printf("gave up: search budget exceeded (%zu operations)\n", h.n);
		break;
	}
	lc_history_free(&h);
	return v == LC_LINEARIZABLE ? 0 : v == LC_VIOLATION ? 1 : 3;
}
