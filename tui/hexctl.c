/* hexctl.c: the operators' console and shell; for now only its version. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc == 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)) {
		printf("hexctl %s\n", HEX_VERSION);
		return 0;
	}
	fprintf(stderr, "usage: hexctl --version\n(this release has only --version)\n");
	return 2;
}
