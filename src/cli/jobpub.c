/*
 * jobpub.c - main(): global options and dispatch to the command table (cmd.c).
 */
#include "config.h"

#include <locale.h>
#include <string.h>

#include "cmd.h"

int
main(int argc, char **argv)
{
	const struct jp_cmd *c;

	/* Before anything else: a SIGTERM from here on stops a publish cleanly (75), never by
	 * the default action (143) while the job is half begun. */
	jp_cmd_signals_early();
	/* File names are bytes, but archives store them as UTF-8: a UTF-8 character type lets
	 * libarchive write plain pax names instead of hdrcharset=BINARY.  Numbers stay "C". */
	if (setlocale(LC_CTYPE, "C.UTF-8") == NULL)
		setlocale(LC_CTYPE, "");
	if (argc < 2) {
		jp_cmd_print_overview(stderr);
		return 64;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("jobpub %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		jp_cmd_signals_default();
		return jp_cmd_help.exec(1, argv);
	}
	if ((c = jp_cmd_find(argv[1])) == NULL) {
		fprintf(stderr, "jobpub: unknown %s '%s'\n", argv[1][0] == '-' ? "option" : "command",
		        argv[1]);
		jp_cmd_print_overview(stderr);
		return 64;
	}
	if (!c->stops)
		jp_cmd_signals_default();
	return c->exec(argc - 1, argv + 1);
}
