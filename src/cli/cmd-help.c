/*
 * cmd-help.c - `jobpub help [COMMAND | options]`.
 */
#include "config.h"

#include <string.h>

#include "cmd.h"
#include "options.h"

static int cmd_help(int argc, char **argv);

const struct jp_cmd jp_cmd_help = {
	.name = "help",
	.summary = "Show the commands, one command's usage and options, or the backend options.",
	.usage = "jobpub help [COMMAND | options]",
	.options = NULL,
	.exec = cmd_help,
};

/* The overview: every command's usage and summary, then the exit codes. */
void
jp_cmd_print_overview(FILE *fp)
{
	size_t i;

	fprintf(fp, "usage: jobpub COMMAND [OPTION]...\n"
	            "       jobpub help [COMMAND | options] | jobpub COMMAND --help | jobpub --version\n\n"
	            "Publish the outputs of a finished HPC job atomically and record them in a SQLite\n"
	            "catalogue: every file or none, never a partial file under a final name.\n\n"
	            "Commands:\n");
	for (i = 0; jp_cmds[i] != NULL; i++)
		fprintf(fp, "  %s\n      %s\n", jp_cmds[i]->usage, jp_cmds[i]->summary);
	fprintf(fp, "\nExit codes (sysexits.h): 0 published, 64 usage, 65 bad manifest/data/unknown job,\n"
	            "66 input missing (required output, manifest, work directory, catalogue, spool\n"
	            "entry), 69 storage refused (conflict, no space), 70 internal,\n"
	            "74 local I/O, 75 temporary (retry later), 77 permission denied, 78 configuration.\n"
	            "See jobpub(1), and jobpub-COMMAND(1) for each command.\n");
}

static int
cmd_help(int argc, char **argv)
{
	const struct jp_cmd *c;

	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		jp_cmd_print_help(&jp_cmd_help, stdout);
		return 0;
	}
	if (argc > 2)
		return jp_cmd_usage_error(&jp_cmd_help, "unexpected argument '%s'", argv[2]);
	if (argc == 2 && strcmp(argv[1], "options") == 0) {
		jp_options_print_help(stdout);
		return 0;
	}
	if (argc == 2) {
		if ((c = jp_cmd_find(argv[1])) == NULL)
			return jp_cmd_usage_error(&jp_cmd_help, "unknown command '%s'", argv[1]);
		jp_cmd_print_help(c, stdout);
		return 0;
	}
	jp_cmd_print_overview(stdout);
	return 0;
}
