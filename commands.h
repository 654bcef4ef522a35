/* The commands main() chooses from: each takes argv from its own name on
 * and returns the exit status, having said what went wrong. */
#ifndef COLORIZE_COMMANDS_H
#define COLORIZE_COMMANDS_H

/* colorize [options] DATA_DIR: the whole task (cmd_run.c) */
int cmd_run(int argc, char **argv);
/* colorize info DATA_DIR (cmd_info.c) */
int cmd_info(int argc, char **argv);
/* colorize palette DATA_DIR (cmd_palette.c) */
int cmd_palette(int argc, char **argv);
/* colorize predict [MODEL] IN OUT, or [MODEL] IN... -o DIR (cmd_predict.c) */
int cmd_predict(int argc, char **argv);

#endif
