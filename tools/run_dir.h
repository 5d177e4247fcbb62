/* A finished training run, read back: its train.json (options, selection), the selected model
 * and the push report that goes with it. Used by finch explain and finch prune; finch attack
 * --run reads the run's data options. */
#ifndef FINCH_RUN_DIR_H
#define FINCH_RUN_DIR_H

#include "run.h"
#include "models/protonet.h"

typedef struct {
    const char *dir;
    cJSON *doc;                /* train.json */
    cJSON *protos;             /* the push report's prototypes.json (NULL: none) */
    char push_dir[1100];       /* where the prototype pictures are ("" when none) */
    DataOpts data;             /* the run's data options (strings owned by doc) */
    Model *model;              /* dir/model.safetensors */
    ModelConfig cfg;
    ProtoNet *p;               /* the model, when it has prototypes */
} RunDir;

/* Reads dir/train.json, dir/model.safetensors and the selected push's prototypes.json (which
 * must list exactly the model's prototypes), on device dev; data_dir: --data-dir (may be NULL).
 * With attention_ok, an attention network without prototypes (ap-*) is taken too, with no push
 * report (protos NULL, push_dir ""). Prints what is wrong and returns the exit status (0; 1 for
 * a missing or broken file, 2 when the run is not of a network it takes). */
int run_dir_open(const char *cmd, const char *dir, const char *data_dir, Device dev, bool attention_ok, RunDir *r);
void run_dir_close(RunDir *r);
/* The data options of the run in dir, from its train.json, into *d (d->dir, --data-dir, is kept;
 * strings owned by *doc, which the caller deletes): any run, not only a prototype network's.
 * 0, or 1 (printed) when train.json is missing or broken. */
int run_dir_data(const char *cmd, const char *dir, DataOpts *d, cJSON **doc);
/* The commands' --run RUN: unless --data is on the command line, d becomes the run's data options,
 * those given on the command line kept (strings copied into keep). 0, or the exit status (printed).
 * (run.c: it needs the command line, which the fuzzed reader above does not.) */
typedef struct { char data[1100], resize[64]; } RunDataCopy;
int run_data_of_run(const char *cmd, const char *run, int argc, char **argv, DataOpts *d, RunDataCopy *keep);
/* An option the run was trained with ("seed", "val-fraction", ...), as given; NULL if absent. */
const char *run_dir_option(const RunDir *r, const char *name);
/* The numeric option, or dflt when absent. */
double run_dir_number(const RunDir *r, const char *name, double dflt);
/* The name of class k ("class k" when the run recorded none); buf of n bytes. */
const char *run_dir_class_name(const RunDir *r, int k, char *buf, size_t n);

#endif
