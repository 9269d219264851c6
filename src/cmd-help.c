/*
 * cmd-help.c - `jobpub help [COMMAND]`.
 */
#include "config.h"

#include <string.h>

#include "cmd.h"

static int cmd_help(int argc, char **argv);

const struct jp_cmd jp_cmd_help = {
	.name = "help",
	.summary = "Show the commands, or one command's usage and options.",
	.usage = "jobpub help [COMMAND]",
	.options = NULL,
	.exec = cmd_help,
};

static int
cmd_help(int argc, char **argv)
{
	const struct jp_cmd *c;
	size_t i;

	if (argc > 2)
		return jp_cmd_usage_error(&jp_cmd_help, "unexpected argument '%s'", argv[2]);
	if (argc == 2) {
		if ((c = jp_cmd_find(argv[1])) == NULL)
			return jp_cmd_usage_error(&jp_cmd_help, "unknown command '%s'", argv[1]);
		jp_cmd_print_help(c, stdout);
		return 0;
	}
	printf("usage: jobpub COMMAND [OPTION]...\n"
	       "       jobpub help [COMMAND] | jobpub COMMAND --help | jobpub --version\n\n"
	       "Publish the outputs of a finished HPC job atomically and record them in a SQLite\n"
	       "catalogue: every file or none, never a partial file under a final name.\n\n"
	       "Commands:\n");
	for (i = 0; jp_cmds[i] != NULL; i++) {
		const char *nl = strchr(jp_cmds[i]->summary, '\n');
		printf("  %-10s %.*s\n", jp_cmds[i]->name,
		       nl ? (int)(nl - jp_cmds[i]->summary) : (int)strlen(jp_cmds[i]->summary),
		       jp_cmds[i]->summary);
	}
	printf("\nExit codes (sysexits.h): 0 published, 64 usage, 65 bad manifest/data/unknown job,\n"
	       "66 required output missing, 69 storage refused (conflict, no space), 70 internal,\n"
	       "74 local I/O, 75 temporary (retry later), 77 permission denied, 78 configuration.\n"
	       "See jobpub(1).\n");
	return 0;
}
