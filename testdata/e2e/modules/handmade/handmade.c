#include <linux/module.h>
#include <linux/init.h>

static int __init handmade_init(void) { return 0; }
static void __exit handmade_exit(void) { }
module_init(handmade_init);
module_exit(handmade_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("dkms-guard end-to-end test module");
